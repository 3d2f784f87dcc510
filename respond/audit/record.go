package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Record kinds.
const (
	kindEvent      = "event"
	kindCheckpoint = "checkpoint"
	kindSegment    = "segment"
)

// Why a segment record starts a stretch of the chain.
const (
	segStart       = "start"        // a new chain, nothing before it
	segRestart     = "restart"      // Open resumed an existing chain
	segRotate      = "rotate"       // the previous file was rotated away
	segDamagedTail = "damaged_tail" // Open found unreadable bytes at the end of the file
	segWriteError  = "write_error"  // records that could not be written were dropped
	segStop        = "stop"         // Close, when there is no key for a closing checkpoint
)

// Why a checkpoint ends a file (its "end" field); periodic ones have none.
const (
	endClose  = "close"
	endRotate = "rotate"
)

// zeroHash is the prev of the very first record of a chain.
var zeroHash = hex.EncodeToString(make([]byte, sha256.Size))

// record is one line of the audit file. The field order is the order in
// the line; a verifier never re-encodes a record, it hashes the bytes it
// read, so the order matters only for human readers.
type record struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Kind     string    `json:"kind"`
	Prev     string    `json:"prev"`

	// kind "event": the PCI DSS 10.2.2 fields, then the canonical event.
	Type     string          `json:"type,omitempty"`
	User     string          `json:"user,omitempty"`
	Outcome  string          `json:"outcome,omitempty"`
	Origin   string          `json:"origin,omitempty"`
	Resource string          `json:"resource,omitempty"`
	Event    json.RawMessage `json:"event,omitempty"`

	// kind "checkpoint".
	Records uint64 `json:"records,omitempty"`
	Head    string `json:"head,omitempty"`
	End     string `json:"end,omitempty"`
	Sig     string `json:"sig,omitempty"`

	// kind "segment".
	Reason   string `json:"reason,omitempty"`
	Previous string `json:"previous,omitempty"`
	Damaged  int64  `json:"damaged_bytes,omitempty"`
	Lost     uint64 `json:"lost,omitempty"`
}

// encode writes r as one JSON line (with its newline) into buf, without
// HTML escaping so that the embedded canonical event keeps its exact bytes.
// The event, already canonical (compact, valid) JSON, is spliced in as the
// last field rather than re-validated by the encoder: that halves the
// writer's cost per record.
func encode(buf *bytes.Buffer, r *record) error {
	r.Time = r.Time.UTC()
	ev := r.Event
	r.Event = nil
	defer func() { r.Event = ev }()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return err
	}
	if len(ev) > 0 {
		buf.Truncate(buf.Len() - len("}\n"))
		buf.WriteString(`,"event":`)
		buf.Write(ev)
		buf.WriteString("}\n")
	}
	return nil
}

// lineHash is the hash the next record's prev names: SHA-256 over the
// line's bytes without its terminating newline (so a line whose newline
// was lost in a crash keeps its hash).
func lineHash(line []byte) string {
	sum := sha256.Sum256(bytes.TrimSuffix(line, []byte("\n")))
	return hex.EncodeToString(sum[:])
}

// checkpointMessage is what a checkpoint's signature covers. Everything a
// forger would want to change is in it: the chain (instance), the position
// (seq, records), the content (head, the hash of the last record before
// the checkpoint), when, and whether the file was closed cleanly here.
func checkpointMessage(r *record) []byte {
	var b []byte
	b = append(b, "vigil-audit-checkpoint-v1\n"...)
	b = append(b, "instance="+r.Instance+"\n"...)
	b = append(b, "seq="+strconv.FormatUint(r.Seq, 10)+"\n"...)
	b = append(b, "time="+r.Time.UTC().Format(time.RFC3339Nano)+"\n"...)
	b = append(b, "records="+strconv.FormatUint(r.Records, 10)+"\n"...)
	b = append(b, "head="+r.Head+"\n"...)
	b = append(b, "end="+r.End+"\n"...)
	return b
}

// sign fills a checkpoint's signature.
func sign(r *record, key ed25519.PrivateKey) {
	r.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, checkpointMessage(r)))
}

// checkSig reports whether a checkpoint's signature is pub's.
func checkSig(r *record, pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(r.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, checkpointMessage(r), sig)
}

// eventRecord builds the record of one event: the canonical event plus
// the PCI DSS 10.2.2 fields at the top level, so an auditor (or a SIEM
// query) finds who, what, outcome, where from and on what without
// knowing each event type's details.
func eventRecord(e detect.Event) (record, error) {
	c, err := e.Canonical()
	if err != nil {
		return record{}, err
	}
	r := record{Kind: kindEvent, Type: string(e.Type), Event: c,
		User: e.User, Origin: e.IP, Outcome: outcomeOf(e), Resource: resourceOf(e)}
	if e.Type == detect.AdminAction {
		if op := detailString(e, "operator"); op != "" {
			r.User = op
		}
		if r.User == "" {
			r.User = "admin" // the admin API knows no name, only the address below
		}
		r.Origin = detailString(e, "remote")
	}
	return r, nil
}

// outcomeOf says what became of the event (PCI DSS 10.2.2 "success or
// failure"): a login succeeded or failed, a request was refused, a
// decision imposed, or the finding only recorded (allowlisted,
// monitor_only, detection without enforcement).
func outcomeOf(e detect.Event) string {
	if o := detailString(e, "outcome"); o != "" {
		return o
	}
	switch {
	case e.Type == detect.AdminAction || e.Type == detect.SuccessfulLogin:
		return "success"
	case e.Type == detect.FailedLogin:
		return "failure"
	case detailTrue(e, "refused") || detailString(e, "action") == "block":
		return "refused"
	case detailTrue(e, "monitor_only") || detailTrue(e, "allowlisted"):
		return "recorded"
	case detailTrue(e, "cut"):
		return "cut"
	case e.Details["until"] != nil || e.Details["revocation"] != nil:
		return "imposed"
	case detailString(e, "action") == "challenge":
		return "challenged"
	}
	return "recorded"
}

// resourceOf names what the event affected (PCI DSS 10.2.2 "identity or
// name of affected data, system component, resource"): the account, the
// address, or the path.
func resourceOf(e detect.Event) string {
	if t := detailString(e, "target"); t != "" {
		return t
	}
	switch e.Type {
	case detect.SuccessfulLogin, detect.FailedLogin, detect.AccountLocked, detect.SuspiciousLogin,
		detect.DistributedBruteForce, detect.SessionRevoked, detect.UnusualLocation, detect.ImpossibleTravel:
		if e.User != "" {
			return "account:" + e.User
		}
	case detect.IPBlocked, detect.CredentialStuffing:
		if e.IP != "" {
			return "ip:" + e.IP
		}
	}
	if p := detailString(e, "path"); p != "" {
		return "path:" + p
	}
	if e.User != "" {
		return "account:" + e.User
	}
	if e.IP != "" {
		return "ip:" + e.IP
	}
	return ""
}

func detailString(e detect.Event, key string) string {
	s, _ := e.Details[key].(string)
	return s
}

func detailTrue(e detect.Event, key string) bool {
	b, _ := e.Details[key].(bool)
	return b
}

// parseRecord reads one line; a line that is not a record of a known kind
// is an error.
func parseRecord(line []byte) (record, error) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("not a JSON record: %v", err)
	}
	switch r.Kind {
	case kindEvent, kindCheckpoint, kindSegment:
	default:
		return r, fmt.Errorf("unknown record kind %q", r.Kind)
	}
	if r.Seq == 0 || len(r.Prev) != 2*sha256.Size {
		return r, fmt.Errorf("record without seq or prev")
	}
	return r, nil
}

// eventID is the event's id, for naming a broken record.
func eventID(r *record) string {
	if r.Kind != kindEvent {
		return r.Kind + ":" + strconv.FormatUint(r.Seq, 10)
	}
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.Event, &e)
	return e.ID
}
