package caddymodule

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/respond/audit"
)

// auditCommand is `caddy vigil audit verify`: an offline check of audit
// files, needing no running Caddy and no private key.
func auditCommand() *cobra.Command {
	verify := &cobra.Command{
		Use:   "verify [--pub audit.pub] <file>... | --chain <path> [--instance <name>]",
		Short: "Verifies audit files: the hash chain and, with --pub, the signed checkpoints; exits 1 and names the first broken record",
		RunE:  runAuditVerify,
	}
	f := verify.Flags()
	f.String("pub", "", "Ed25519 public key (PKIX PEM) that verifies the checkpoints")
	f.String("chain", "", "The audit_log path: verify every file of the chain (rotated ones included), oldest first")
	f.String("instance", "", "With --chain: the instance whose chain to verify (default: this host's name)")
	c := &cobra.Command{Use: "audit", Short: "Tamper-evident audit trail tools"}
	c.AddCommand(verify)
	return c
}

var errAuditBroken = errors.New("audit verification failed")

func runAuditVerify(c *cobra.Command, args []string) error {
	files := args
	if chain := flagString(c, "chain"); chain != "" {
		var err error
		if files, err = audit.Files(chain, flagString(c, "instance")); err != nil {
			return err
		}
	}
	if len(files) == 0 {
		return errors.New("no audit files given (list them, or use --chain <path>)")
	}
	var pub ed25519.PublicKey
	if p := flagString(c, "pub"); p != "" {
		k, err := audit.LoadPublicKey(p)
		if err != nil {
			return err
		}
		pub = k
	}
	rep, err := audit.Verify(files, pub)
	if err != nil {
		return err
	}
	out := c.OutOrStdout()
	if asJSON, _ := c.Flags().GetBool("json"); asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "%d records, %d checkpoints in %d files", rep.Records, rep.Checkpoints, len(files))
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
		if pub == nil {
			fmt.Fprintln(out, "note: without --pub only the chain is checked; a cut tail or a rewrite is not detectable")
		}
	}
	if !rep.OK() {
		c.SilenceUsage = true
		return errAuditBroken
	}
	fmt.Fprintln(c.ErrOrStderr(), "audit OK")
	return nil
}
