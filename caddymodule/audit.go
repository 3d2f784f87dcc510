package caddymodule

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/vigilsec/vigil/respond"
	"github.com/vigilsec/vigil/respond/audit"
	"github.com/vigilsec/vigil/respond/report"
)

// AuditConfig is the tamper-evident audit trail: every event and admin
// action as a hash-chained JSON line (docs/audit.md).
type AuditConfig struct {
	// Path of the live file; the instance name goes before the extension
	// (audit.<instance>.jsonl), one chain per instance.
	Path string `json:"path"`
	// SignKey is an Ed25519 private key (PKCS#8 PEM) that signs periodic
	// checkpoints, so a cut tail is detectable. Without it only the chain
	// is kept.
	SignKey string `json:"sign_key,omitempty"`
	// Checkpoint is how often a checkpoint is written (default 1m); one
	// is always written at shutdown.
	Checkpoint caddy.Duration `json:"checkpoint,omitempty"`
	// RotateBytes rotates the live file past this size (0: never); rotated
	// files are gzip-compressed and the chain continues.
	RotateBytes int64 `json:"rotate_bytes,omitempty"`
	// Keep is how many rotated files are kept (0: all).
	Keep int `json:"keep,omitempty"`
	// Instance names this gateway's chain (default: the host name).
	Instance string `json:"instance,omitempty"`
}

// auditPool keeps one open audit log per file across config reloads: a
// chain has one writer.
var auditPool = caddy.NewUsagePool()

type pooledAudit struct{ *audit.Log }

func (p pooledAudit) Destruct() error { return p.Close() }

// provisionAudit opens (or shares with the running config) the audit log.
func (a *App) provisionAudit() error {
	c := a.AuditLog
	if c == nil {
		return nil
	}
	if c.Path == "" {
		return fmt.Errorf("vigil audit_log: a file path is required")
	}
	var key ed25519.PrivateKey
	if c.SignKey != "" {
		k, err := audit.LoadPrivateKey(c.SignKey)
		if err != nil {
			return fmt.Errorf("vigil audit_log: %w", err)
		}
		key = k
	}
	id, _ := json.Marshal(c)
	logger := a.logger.Named("audit")
	val, _, err := auditPool.LoadOrNew(string(id), func() (caddy.Destructor, error) {
		l, err := audit.Open(audit.Options{Path: c.Path, Instance: c.Instance, SignKey: key, Checkpoint: time.Duration(c.Checkpoint),
			RotateSize: c.RotateBytes, Keep: c.Keep, Logger: slog.New(zapslog.NewHandler(logger.Core())),
			// the Caddy log is a witness the audit file's owner cannot rewrite
			Witness: func(cp []byte) { logger.Info("audit checkpoint", zap.ByteString("checkpoint", cp)) }})
		if err != nil {
			return nil, err
		}
		return pooledAudit{l}, nil
	})
	if err != nil {
		return fmt.Errorf("vigil audit_log %s: %w", c.Path, err)
	}
	a.auditKey, a.audit, a.auditPub = string(id), val.(pooledAudit).Log, nil
	if key != nil {
		a.auditPub = key.Public().(ed25519.PublicKey)
	}
	return nil
}

// auditSink is the bus sink of the audit log, or nil.
func (a *App) auditSink() respond.Sink {
	if a.audit == nil {
		return nil
	}
	return respond.SinkFunc(a.audit.Append)
}

func (a *App) cleanupAudit() error {
	if a.auditKey == "" {
		return nil
	}
	_, err := auditPool.Delete(a.auditKey)
	return err
}

// auditStatus verifies this instance's chain for a report; nil without
// audit_log.
func (a *App) auditStatus() *report.AuditStatus {
	if a.audit == nil {
		return nil
	}
	st := a.audit.Status()
	files, err := audit.Files(a.AuditLog.Path, a.AuditLog.Instance)
	if err != nil {
		return &report.AuditStatus{Records: int(st.Records), Problem: err.Error()}
	}
	rep, err := audit.Verify(files, a.auditPub)
	out := &report.AuditStatus{Verified: err == nil && rep.OK(), Records: int(rep.Records), LastCheckpoint: rep.LastCheckpoint}
	switch {
	case err != nil:
		out.Problem = err.Error()
	case len(rep.Problems) > 0:
		out.Problem = rep.Problems[0].String()
	}
	return out
}

// parseAuditLog reads:
//
//	audit_log <path> {
//		sign_key <ed25519-private.pem>
//		checkpoint <dur>
//		rotate <size> keep <n>
//		instance <name>
//	}
func parseAuditLog(d *caddyfile.Dispenser) (*AuditConfig, error) {
	c := &AuditConfig{}
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	c.Path = d.Val()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(1) {
		opt := d.Val()
		args := d.RemainingArgs()
		switch {
		case (opt == "sign_key" || opt == "instance") && len(args) == 1:
			if opt == "sign_key" {
				c.SignKey = args[0]
			} else {
				c.Instance = args[0]
			}
		case opt == "checkpoint" && len(args) == 1:
			dur, err := positiveDuration(d, "audit_log checkpoint", args[0])
			if err != nil {
				return nil, err
			}
			c.Checkpoint = dur
		case opt == "rotate" && (len(args) == 1 || (len(args) == 3 && args[1] == "keep")):
			n, err := humanize.ParseBytes(args[0])
			if err != nil || n == 0 || n > 1<<50 {
				return nil, d.Errf("audit_log: rotate %q is not a size", args[0])
			}
			c.RotateBytes = int64(n)
			if len(args) == 3 {
				if c.Keep, err = countArg(d, "audit_log keep", args[2:3]); err != nil {
					return nil, err
				}
			}
		default:
			return nil, d.Errf("audit_log: unknown or malformed option %q (want sign_key, checkpoint, rotate <size> [keep <n>], instance)", opt)
		}
	}
	return c, nil
}
