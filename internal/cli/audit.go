package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/vigilsec/vigil/respond/audit"
)

// ErrAuditBroken is the error of `caddy vigil audit verify` when a record
// or checkpoint does not verify: the command exits 1 after naming it.
var ErrAuditBroken = errors.New("audit verification failed")

// AuditFiles are the audit files `caddy vigil audit verify` checks: those
// listed, or every file of the chain at Chain (rotated ones included).
type AuditFiles struct {
	Files    []string
	Chain    string // the audit_log path
	Instance string // with Chain: whose chain (default: this host's name)
	PubKey   string // path of the Ed25519 public key (PKIX PEM); empty: the chain only
}

// VerifyAudit is `caddy vigil audit verify`: an offline check of audit
// files, needing no running Caddy and no private key. It prints what it
// found (as JSON with --json), notes "audit OK", or returns ErrAuditBroken.
func (e Env) VerifyAudit(a AuditFiles) error {
	files := a.Files
	if a.Chain != "" {
		var err error
		if files, err = audit.Files(a.Chain, a.Instance); err != nil {
			return err
		}
	}
	if len(files) == 0 {
		return errors.New("no audit files given (list them, or use --chain <path>)")
	}
	var pub ed25519.PublicKey
	if a.PubKey != "" {
		k, err := audit.LoadPublicKey(a.PubKey)
		if err != nil {
			return err
		}
		pub = k
	}
	rep, err := audit.Verify(files, pub)
	if err != nil {
		return err
	}
	if e.Out.JSON {
		enc := json.NewEncoder(e.Out.W)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeAudit(e.Out.W, rep, len(files), pub != nil)
	}
	if !rep.OK() {
		return ErrAuditBroken
	}
	fmt.Fprintln(e.Notes, "audit OK")
	return nil
}

// writeAudit prints a verification for a person: the counts, then each
// warning and each broken record with its file and line.
func writeAudit(out io.Writer, rep audit.Report, files int, signed bool) {
	fmt.Fprintf(out, "%d records, %d checkpoints in %d files", rep.Records, rep.Checkpoints, files)
	if !rep.LastCheckpoint.IsZero() {
		fmt.Fprintf(out, "; last checkpoint %s", rep.LastCheckpoint.UTC().Format("2006-01-02 15:04:05Z"))
	}
	fmt.Fprintln(out)
	for _, w := range rep.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w.String())
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "BROKEN: %s (%s line %d)\n", p.String(), filepath.Base(p.File), p.Line)
	}
	if !signed {
		fmt.Fprintln(out, "note: without --pub only the chain is checked; a cut tail or a rewrite is not detectable")
	}
}
