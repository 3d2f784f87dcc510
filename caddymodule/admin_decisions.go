package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/vigilsec/vigil/respond"
)

// handleDecisions serves GET /vigil/decisions?kind=&target=.
func (a *adminAPI) handleDecisions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	return serveList(w, r, app)
}

// handleRevocationList serves GET /vigil/revocations (a pattern of its own:
// handleRevocations keeps POST and DELETE).
func (a *adminAPI) handleRevocationList(w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	return serveList(w, r, app, respond.RevokeUser, respond.RevokeJTI)
}

// serveList answers the active decisions the query's kind and target
// select, among the kinds within (none: every kind).
func serveList(w http.ResponseWriter, r *http.Request, app *App, within ...respond.Kind) error {
	ds, err := selectDecisions(r, app, within)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"decisions": ds})
}

// selectDecisions lists the active decisions in canonical form, filtered
// by the query's kind (one or a comma-separated list, within those given)
// and target (compared in canonical form).
func selectDecisions(r *http.Request, app *App, within []respond.Kind) ([]respond.Decision, error) {
	q := r.URL.Query()
	kinds, err := respond.ParseKinds(q["kind"])
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "kind: %v", err)
	}
	for _, k := range kinds {
		if len(within) > 0 && !slices.Contains(within, k) {
			return nil, apiErr(http.StatusBadRequest, "kind %s is not listed under %s", k, r.URL.Path)
		}
	}
	if len(kinds) == 0 {
		kinds = within
	}
	f, err := respond.NewDecisionFilter(kinds, q.Get("target"))
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "%v", err)
	}
	ds, err := app.store().Decisions.List(r.Context(), time.Now())
	if err != nil {
		return nil, apiErr(http.StatusBadGateway, "listing decisions: %v", err)
	}
	return respond.Listing(ds, f), nil
}

// decisionRequest is the body of POST /vigil/blocks and POST /vigil/locks.
type decisionRequest struct {
	IP       string `json:"ip,omitempty"`
	CIDR     string `json:"cidr,omitempty"`
	User     string `json:"user,omitempty"`
	Duration string `json:"duration,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

const defaultManualDuration = 24 * time.Hour

func readDecisionRequest(r *http.Request) (decisionRequest, time.Duration, error) {
	var req decisionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, 0, apiErr(http.StatusBadRequest, "decoding request body: %v", err)
	}
	dur := defaultManualDuration
	if req.Duration != "" {
		d, err := caddy.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return req, 0, apiErr(http.StatusBadRequest, "duration %q is not a positive duration", req.Duration)
		}
		dur = d
	}
	if len(req.Reason) > 1024 {
		return req, 0, apiErr(http.StatusBadRequest, "reason is longer than 1024 bytes")
	}
	return req, dur, nil
}

// pathTarget is the escaped remainder of the path after prefix: an IP, a
// CIDR (its slash may be escaped or not) or a username.
func pathTarget(r *http.Request, prefix string) (string, error) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
	t, err := url.PathUnescape(raw)
	if err != nil || t == "" {
		return "", apiErr(http.StatusBadRequest, "missing or malformed target in path")
	}
	return t, nil
}

func (a *adminAPI) handleBlocks(w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/vigil/blocks":
		return serveList(w, r, app, respond.Block)
	case r.Method == http.MethodPost && r.URL.Path == "/vigil/blocks":
		req, dur, err := readDecisionRequest(r)
		if err != nil {
			return err
		}
		if (req.IP == "") == (req.CIDR == "") || req.User != "" {
			return apiErr(http.StatusBadRequest, `give exactly one of "ip" or "cidr"`)
		}
		target, err := respond.NormalizeBlockTarget(req.IP + req.CIDR)
		if err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		return a.put(w, r, app, decisionChange{kind: respond.Block, target: target, reason: req.Reason, dur: dur})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/vigil/blocks/"):
		t, err := pathTarget(r, "/vigil/blocks/")
		if err != nil {
			return err
		}
		target, err := respond.NormalizeBlockTarget(t)
		if err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		return a.lift(w, r, app, respond.Block, target)
	}
	return apiErr(http.StatusMethodNotAllowed, "%s %s not allowed", r.Method, r.URL.Path)
}

func (a *adminAPI) handleLocks(w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/vigil/locks":
		return serveList(w, r, app, respond.Lock)
	case r.Method == http.MethodPost && r.URL.Path == "/vigil/locks":
		req, dur, err := readDecisionRequest(r)
		if err != nil {
			return err
		}
		if req.User == "" || req.IP != "" || req.CIDR != "" {
			return apiErr(http.StatusBadRequest, `give "user"`)
		}
		// listed, answered and audited as the account's canonical name
		user, err := respond.CanonicalTarget(respond.Lock, req.User)
		if err != nil {
			return apiErr(http.StatusBadRequest, "%v", err)
		}
		return a.put(w, r, app, decisionChange{kind: respond.Lock, target: user, reason: req.Reason, dur: dur})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/vigil/locks/"):
		user, err := pathTarget(r, "/vigil/locks/")
		if err != nil {
			return err
		}
		return a.lift(w, r, app, respond.Lock, user)
	}
	return apiErr(http.StatusMethodNotAllowed, "%s %s not allowed", r.Method, r.URL.Path)
}

// decisionChange is one manual decision to make or lift.
type decisionChange struct {
	kind   respond.Kind
	target string
	reason string
	dur    time.Duration
}

func (a *adminAPI) put(w http.ResponseWriter, r *http.Request, app *App, c decisionChange) error {
	now := time.Now().UTC()
	if c.reason == "" {
		c.reason = "manual"
	}
	d := respond.Decision{Kind: c.kind, Target: c.target, Reason: c.reason, Source: "admin", Strike: 1, Created: now, Until: now.Add(c.dur)}
	if err := app.core.Impose(r.Context(), d, operator(r)); err != nil {
		return apiErr(http.StatusBadGateway, "%v", err)
	}
	return writeJSON(w, http.StatusCreated, d)
}

func (a *adminAPI) lift(w http.ResponseWriter, r *http.Request, app *App, kind respond.Kind, target string) error {
	target, err := respond.CanonicalTarget(kind, target)
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	was, err := app.core.Lift(r.Context(), kind, target, operator(r))
	if err != nil {
		return apiErr(http.StatusBadGateway, "%v", err)
	}
	if !was {
		return apiErr(http.StatusNotFound, "no active %s for %s", kind, target)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"lifted": true, "kind": kind, "target": target})
}

// operator is who called the admin API, for the ADMIN_ACTION event.
func operator(r *http.Request) respond.Operator { return respond.Operator{Remote: r.RemoteAddr} }

// handleExport serves GET /vigil/decisions/export?format=&kind=&target=:
// the active decisions in Vigil's JSON (every kind) or a format cscli
// decisions import reads (blocks only; X-Vigil-Skipped counts the rest).
func (a *adminAPI) handleExport(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	return serveExport(w, r, app)
}

func serveExport(w http.ResponseWriter, r *http.Request, app *App) error {
	format, err := respond.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	ds, err := selectDecisions(r, app, nil)
	if err != nil {
		return err
	}
	// written whole before the answer starts, so that an error is still an
	// error status and the skipped count can go in a header
	var buf bytes.Buffer
	skipped, err := respond.WriteDecisions(&buf, ds, format, time.Now())
	if err != nil {
		return apiErr(http.StatusInternalServerError, "writing %s: %v", format, err)
	}
	ctype := "application/json"
	if format == respond.FormatCrowdSecCSV {
		ctype = "text/csv; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Vigil-Skipped", strconv.Itoa(skipped))
	_, err = w.Write(buf.Bytes())
	return err
}

// importTimeout bounds the writes of one import. They go on if the caller
// hangs up: an import stops whole or not at all, never halfway because a
// client gave up waiting.
const importTimeout = 5 * time.Minute

// handleImport serves POST /vigil/decisions/import?format=: the body (at
// most respond.MaxImportBytes) is parsed and every row validated before
// anything is written; a bad row is a 400 naming it, and nothing is
// imported. It answers how many decisions were imported and skipped.
func (a *adminAPI) handleImport(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	return serveImport(w, r, app)
}

func serveImport(w http.ResponseWriter, r *http.Request, app *App) error {
	format, err := respond.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, respond.MaxImportBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apiErr(http.StatusRequestEntityTooLarge, "an import is at most %d MiB", respond.MaxImportBytes>>20)
	} else if err != nil {
		return apiErr(http.StatusBadRequest, "reading the import: %v", err)
	}
	batch, err := respond.ParseDecisions(data, format, time.Now())
	if err != nil {
		return apiErr(http.StatusBadRequest, "nothing imported: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), importTimeout)
	defer cancel()
	queued := app.core.Import(ctx, batch, operator(r))
	return writeJSON(w, http.StatusOK, map[string]any{"format": format, "imported": len(batch.Decisions),
		"skipped": batch.Skipped, "queued": queued})
}
