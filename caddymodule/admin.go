package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves /vigil/ on Caddy's admin endpoint (localhost:2019 by
// default), never on a public listener.
type adminAPI struct {
	ctx caddy.Context
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.vigil", New: func() caddy.Module { return new(adminAPI) }}
}

// Provision keeps the context; the vigil app is looked up per request
// because the admin endpoint is provisioned before the apps are.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/vigil/decisions", Handler: caddy.AdminHandlerFunc(a.handleDecisions)},
		{Pattern: "/vigil/blocks", Handler: caddy.AdminHandlerFunc(a.handleBlocks)},
		{Pattern: "/vigil/blocks/", Handler: caddy.AdminHandlerFunc(a.handleBlocks)},
		{Pattern: "/vigil/locks", Handler: caddy.AdminHandlerFunc(a.handleLocks)},
		{Pattern: "/vigil/locks/", Handler: caddy.AdminHandlerFunc(a.handleLocks)},
		{Pattern: "/vigil/events", Handler: caddy.AdminHandlerFunc(a.handleEvents)},
		{Pattern: "/vigil/revocations", Handler: caddy.AdminHandlerFunc(a.handleRevocations)},
		{Pattern: "/vigil/revocations/", Handler: caddy.AdminHandlerFunc(a.handleRevocations)},
	}
}

func apiErr(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func (a *adminAPI) app() (*App, error) {
	v, err := a.ctx.AppIfConfigured("vigil")
	if err != nil {
		return nil, apiErr(http.StatusServiceUnavailable, "vigil is not configured: %v", err)
	}
	return v.(*App), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

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

func (a *adminAPI) handleEvents(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	f, err := parseEventFilter(r.URL.Query())
	if err != nil {
		return apiErr(http.StatusBadRequest, "%v", err)
	}
	page, err := app.store().Events.Query(r.Context(), f)
	if err != nil {
		return apiErr(http.StatusBadGateway, "querying events: %v", err)
	}
	if page.Events == nil {
		page.Events = []detect.Event{}
	}
	return writeJSON(w, http.StatusOK, page)
}

// parseEventFilter reads type, user, ip, severity, since, until, limit and
// cursor. Times are RFC 3339 or a duration back from now ("1h").
func parseEventFilter(q url.Values) (respond.EventFilter, error) {
	var f respond.EventFilter
	for _, list := range q["type"] {
		for _, t := range strings.Split(list, ",") {
			typ, err := detect.ParseType(t)
			if err != nil {
				return f, err
			}
			f.Types = append(f.Types, typ)
		}
	}
	f.User, f.IP, f.Cursor = q.Get("user"), q.Get("ip"), q.Get("cursor")
	if s := q.Get("severity"); s != "" {
		sev, err := detect.ParseSeverity(s)
		if err != nil {
			return f, err
		}
		f.MinSeverity = sev
	}
	var err error
	if f.Since, err = parseWhen(q.Get("since")); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseWhen(q.Get("until")); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	if s := q.Get("limit"); s != "" {
		if _, err := fmt.Sscanf(s, "%d", &f.Limit); err != nil || f.Limit < 1 {
			return f, errors.New("limit must be a positive number")
		}
	}
	return f, nil
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := caddy.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration", s)
	}
	return time.Now().Add(-d), nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
