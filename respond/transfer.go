package respond

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
)

// Moving decisions in and out in bulk: Vigil's JSON and the two formats
// `cscli decisions import` reads (CSV with a header, a JSON array), every
// row validated before anything is written; then the bulk writes.

// Format is an import or export format.
type Format string

const (
	// FormatVigil is GET /vigil/decisions' answer, {"decisions": […]}, or
	// a bare array of decisions: every kind, with its times and strikes.
	FormatVigil Format = "vigil"
	// FormatCrowdSecCSV is CSV with a header naming any of value, duration,
	// type, scope, reason, origin: blocks only.
	FormatCrowdSecCSV Format = "crowdsec-csv"
	// FormatCrowdSecJSON is a JSON array of objects with those fields.
	FormatCrowdSecJSON Format = "crowdsec-json"
)

// ParseFormat accepts the formats by name; empty is FormatVigil.
func ParseFormat(s string) (Format, error) {
	if f := cmp.Or(Format(s), FormatVigil); slices.Contains([]Format{FormatVigil, FormatCrowdSecCSV, FormatCrowdSecJSON}, f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want vigil, crowdsec-csv or crowdsec-json)", s)
}

// Bounds of one import: its body, its rows, and the longest decision.
const (
	MaxImportBytes     = 64 << 20
	MaxImportDecisions = 1_000_000
	maxImportDuration  = 100 * 365 * 24 * time.Hour
	maxReasonBytes     = 1024
	maxSkipReasons     = 16 // distinct reasons counted apart; the rest count as "other"
)

// csDefaults fill the columns a row leaves empty, as cscli fills them.
var csDefaults = csRow{Duration: "4h", Type: "ban", Scope: "ip", Reason: "manual"}

// Batch is a parsed import: the decisions to write (valid, canonical, in
// force, one per target: the one that ends last) and the rows left out.
type Batch struct {
	Format    Format
	Decisions []Decision
	// Skipped counts the rows left out by why: "expired", "type captcha"
	// (only bans become blocks), "scope country" (only Ip and Range).
	Skipped map[string]int
}

func (b *Batch) skip(why string) {
	if _, seen := b.Skipped[why]; !seen && len(b.Skipped) >= maxSkipReasons {
		why = "other"
	}
	b.Skipped[why]++
}

// ParseDecisions reads an import at now. Every row is validated first: the
// first bad one is an error naming it, and then nothing is imported.
func ParseDecisions(data []byte, f Format, now time.Time) (Batch, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	b := Batch{Format: f, Skipped: map[string]int{}}
	parse := map[Format]func([]byte, time.Time, *Batch) error{
		FormatVigil: parseVigil, FormatCrowdSecCSV: parseCrowdSecCSV, FormatCrowdSecJSON: parseCrowdSecJSON}[f]
	if parse == nil {
		return b, fmt.Errorf("unknown format %q", f)
	}
	if err := parse(data, now, &b); err != nil {
		return Batch{Format: f}, err
	}
	b.Decisions = dedupe(b.Decisions)
	return b, nil
}

// jsonItems splits a JSON array (or Vigil's {"decisions": […]}) into its
// items, so that an error names the item it is in.
func jsonItems(data []byte, wrapped bool) ([]json.RawMessage, error) {
	var items []json.RawMessage
	var w struct {
		Decisions *[]json.RawMessage `json:"decisions"`
	}
	w.Decisions = &items
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); wrapped && len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(trimmed, &w); err != nil {
			return nil, fmt.Errorf(`reading {"decisions": […]}: %w`, err)
		}
	} else if err := json.Unmarshal(trimmed, &items); err != nil {
		return nil, fmt.Errorf("reading a JSON array: %w", err)
	}
	if len(items) > MaxImportDecisions {
		return nil, fmt.Errorf("more than %d decisions in one import", MaxImportDecisions)
	}
	return items, nil
}

func parseVigil(data []byte, now time.Time, b *Batch) error {
	items, err := jsonItems(data, true)
	if err != nil {
		return err
	}
	for i, raw := range items {
		var d Decision
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			if strings.Contains(err.Error(), `"value"`) {
				err = fmt.Errorf("%w (a CrowdSec file? use format crowdsec-json)", err)
			}
			return fmt.Errorf("decision %d: %w", i+1, err)
		}
		if err := d.admit(now); err != nil {
			return fmt.Errorf("decision %d (%s %q): %w", i+1, d.Kind, detect.Display(d.Target), err)
		}
		if !d.Active(now) {
			b.skip("expired")
			continue
		}
		b.Decisions = append(b.Decisions, d)
	}
	return nil
}

// csRow is one decision as cscli reads and Vigil writes them.
type csRow struct {
	Value    string `json:"value"`
	Duration string `json:"duration,omitempty"`
	Type     string `json:"type,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Origin   string `json:"origin,omitempty"`
}

// csColumns are the CSV columns, in csRow's order (the order Vigil writes).
var csColumns = []string{"value", "duration", "type", "scope", "reason", "origin"}

func (r csRow) columns() []string {
	return []string{r.Value, r.Duration, r.Type, r.Scope, r.Reason, r.Origin}
}

func parseCrowdSecCSV(data []byte, now time.Time, b *Batch) error {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading the header line: %w", err)
	}
	at := map[int]int{} // header column -> csColumns index; unknown columns are ignored, as cscli does
	seen := map[int]bool{}
	for i, h := range header {
		j := slices.Index(csColumns, strings.ToLower(strings.TrimSpace(h)))
		if j >= 0 && seen[j] {
			return fmt.Errorf("line 1: column %q appears twice", csColumns[j])
		} else if j >= 0 {
			seen[j], at[i] = true, j
		}
	}
	if !seen[0] {
		return errors.New(`line 1: the header has no "value" column`)
	}
	for rows := 0; ; rows++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading CSV: %w", err)
		}
		if rows >= MaxImportDecisions {
			return fmt.Errorf("more than %d decisions in one import", MaxImportDecisions)
		}
		var v [6]string
		for i, j := range at {
			v[j] = strings.TrimSpace(rec[i])
		}
		r := csRow{Value: v[0], Duration: v[1], Type: v[2], Scope: v[3], Reason: v[4], Origin: v[5]}
		line, _ := cr.FieldPos(0)
		if err := r.add(b, now); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

func parseCrowdSecJSON(data []byte, now time.Time, b *Batch) error {
	items, err := jsonItems(data, false)
	if err != nil {
		return err
	}
	for i, raw := range items {
		var r csRow
		err := json.Unmarshal(raw, &r)
		if err == nil {
			err = r.add(b, now)
		}
		if err != nil {
			return fmt.Errorf("decision %d: %w", i+1, err)
		}
	}
	return nil
}

// add validates a CrowdSec row and adds its block to b, or counts it as
// skipped: Vigil enforces bans of addresses and ranges only (a captcha, a
// throttle, a country or a username has no Vigil counterpart).
func (r csRow) add(b *Batch, now time.Time) error {
	if r.Value == "" {
		return errors.New(`"value" is empty`)
	}
	dur, err := parseDuration(strings.TrimSpace(cmp.Or(r.Duration, csDefaults.Duration)))
	if err != nil {
		return err
	}
	reason := strings.ToValidUTF8(cmp.Or(r.Reason, csDefaults.Reason), "\uFFFD") // as JSON would write it
	if len(reason) > maxReasonBytes {
		return fmt.Errorf("reason is longer than %d bytes", maxReasonBytes)
	}
	typ := strings.ToLower(cmp.Or(r.Type, csDefaults.Type))
	scope := strings.ToLower(cmp.Or(r.Scope, csDefaults.Scope))
	switch {
	case typ != "ban":
		b.skip("type " + detect.Display(typ))
		return nil
	case scope != "ip" && scope != "range":
		b.skip("scope " + detect.Display(scope))
		return nil
	}
	target, err := NormalizeBlockTarget(r.Value)
	if err != nil {
		return err
	}
	if scope == "ip" && strings.Contains(target, "/") {
		return fmt.Errorf("scope Ip, but %s is a range (scope Range)", target)
	}
	b.Decisions = append(b.Decisions, Decision{Kind: Block, Target: target, Reason: reason, Source: "admin",
		Strike: 1, Created: now.UTC(), Until: now.Add(dur).UTC()})
	return nil
}

// parseDuration reads a Go duration with an optional leading count of days
// ("7d", "1d12h"), as CrowdSec lists write them.
func parseDuration(s string) (time.Duration, error) {
	rest, days := s, time.Duration(0)
	if before, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(before)
		if err != nil || n < 0 || n > int(maxImportDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q: bad count of days", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, after
	}
	d := time.Duration(0)
	if rest != "" || days == 0 {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
	}
	if total := days + d; d >= 0 && total > 0 && total <= maxImportDuration {
		return total, nil
	}
	return 0, fmt.Errorf("duration %q is not between 0 and 100 years", s)
}

// dedupe keeps one decision per target: the one that ends last.
func dedupe(ds []Decision) []Decision {
	at := make(map[string]int, len(ds))
	out := ds[:0]
	for _, d := range ds {
		k := string(d.Kind) + "\x00" + d.Target
		if i, ok := at[k]; ok && d.Until.After(out[i].Until) {
			out[i] = d
		} else if !ok {
			at[k] = len(out)
			out = append(out, d)
		}
	}
	return out
}

// WriteDecisions writes ds (a Listing) in format f at now (durations are
// what remains of each). The CrowdSec formats hold blocks only: it returns
// how many decisions it left out.
func WriteDecisions(w io.Writer, ds []Decision, f Format, now time.Time) (skipped int, err error) {
	if f == FormatVigil {
		return 0, json.NewEncoder(w).Encode(map[string]any{"decisions": ds})
	}
	rows := make([]csRow, 0, len(ds))
	for _, d := range ds {
		if d.Kind != Block {
			skipped++
			continue
		}
		scope := "Ip"
		if strings.Contains(d.Target, "/") {
			scope = "Range"
		}
		rows = append(rows, csRow{Value: d.Target, Duration: d.Remaining(now).String(), Type: "ban",
			Scope: scope, Reason: d.Reason, Origin: "vigil"})
	}
	if f == FormatCrowdSecJSON {
		return skipped, json.NewEncoder(w).Encode(rows)
	}
	cw := csv.NewWriter(w)
	_ = cw.Write(csColumns)
	for _, r := range rows {
		_ = cw.Write(r.columns())
	}
	cw.Flush()
	return skipped, cw.Error()
}

// Import writes a parsed batch in bulk (PutMany) and records it as one
// ADMIN_ACTION, however many decisions it holds. It returns how many
// decisions wait for Redis to answer (enforced here meanwhile).
func (c *Core) Import(ctx context.Context, b Batch, op Operator) int {
	queued := PutMany(ctx, c.Store.Decisions, b.Decisions)
	c.adminEvent(op, "import", "decisions", detect.Details{"count": len(b.Decisions), "format": string(b.Format),
		"skipped": b.Skipped, "queued": queued})
	return queued
}

// putManyScript is putScript (only if longer) for many decisions at once.
// KEYS hash. ARGV channel, instance id, then (field, value, until µs) per
// decision; the message is built here, as imposeScript builds its own.
var putManyScript = redis.NewScript(activeLua + `
local n = 0
for i = 3, #ARGV, 3 do
  if not active(redis.call('HGET', KEYS[1], ARGV[i]), tonumber(ARGV[i+2]) - 1) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
    redis.call('PUBLISH', ARGV[1], '{"op":"set","from":"' .. ARGV[2] .. '","decision":' .. ARGV[i+1] .. '}')
    n = n + 1
  end
end
return n
`)

// putManyBatch decisions per script call: 100,000 take 200 round trips,
// Redis is never busy for long, and the other instances' subscribers keep
// up with the messages (one per decision, as for every write; the resync
// catches a lost one).
const putManyBatch = 500

func (r *RedisDecisions) putMany(ctx context.Context, ds []Decision) (queued int) {
	failed := false
	for len(ds) > 0 {
		chunk := ds[:min(len(ds), putManyBatch)]
		ds = ds[len(chunk):]
		keys := make([]string, len(chunk))
		args := make([]any, 0, 2+3*len(chunk))
		args = append(args, r.hashKey, r.id)
		for i, d := range chunk {
			keys[i] = d.Key()
			v, _ := json.Marshal(storedDecision{Decision: d, UntilUS: d.Until.UnixMicro()})
			args = append(args, keys[i], v, d.Until.UnixMicro())
		}
		r.syncMu.RLock()
		if !failed {
			// after one failure the rest waits for replay: every further
			// call would wait out the client's timeouts too
			failed = putManyScript.Run(ctx, r.client, []string{r.hashKey}, args...).Err() != nil
		}
		r.mu.Lock()
		if last := len(chunk) - 1; failed {
			for i, d := range chunk[:last] {
				r.pending[keys[i]] = pendingOp{d: d}
			}
			r.queuePending(keys[last], pendingOp{d: chunk[last]}, time.Now()) // trims to the bound once
			queued += len(chunk)
		} else {
			for _, k := range keys {
				delete(r.pending, k) // superseded, as settled does
			}
		}
		r.mu.Unlock()
		r.cache.SetMany(chunk)
		r.syncMu.RUnlock()
	}
	if failed {
		r.hooks.storeError("import")
	}
	return queued
}
