package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func (a *adminAPI) handleDecisions(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	ds, err := app.store().Decisions.List(r.Context(), time.Now())
	if err != nil {
		return apiErr(http.StatusBadGateway, "listing decisions: %v", err)
	}
	if ds == nil {
		ds = []respond.Decision{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"decisions": ds})
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
	case r.Method == http.MethodPost && r.URL.Path == "/vigil/locks":
		req, dur, err := readDecisionRequest(r)
		if err != nil {
			return err
		}
		if req.User == "" || req.IP != "" || req.CIDR != "" {
			return apiErr(http.StatusBadRequest, `give "user"`)
		}
		if _, err := detect.CheckUsername(req.User); err != nil {
			return apiErr(http.StatusBadRequest, "user: %v", err)
		}
		return a.put(w, r, app, decisionChange{kind: respond.Lock, target: req.User, reason: req.Reason, dur: dur})
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
