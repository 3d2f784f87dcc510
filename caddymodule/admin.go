package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
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
		{Pattern: "GET /vigil/revocations", Handler: caddy.AdminHandlerFunc(a.handleRevocationList)},
		{Pattern: "/vigil/decisions/export", Handler: caddy.AdminHandlerFunc(a.handleExport)},
		{Pattern: "/vigil/decisions/import", Handler: caddy.AdminHandlerFunc(a.handleImport)},
		{Pattern: "/vigil/health", Handler: caddy.AdminHandlerFunc(a.handleHealth)},
		{Pattern: "/vigil/report", Handler: caddy.AdminHandlerFunc(a.handleReport)},
		{Pattern: "/vigil/events/stream", Handler: caddy.AdminHandlerFunc(a.handleEventStream)},
		{Pattern: "/vigil/users/", Handler: caddy.AdminHandlerFunc(a.handleUser)},
		{Pattern: "/vigil/ips/", Handler: caddy.AdminHandlerFunc(a.handleIP)},
		{Pattern: "/vigil/stats", Handler: caddy.AdminHandlerFunc(a.handleStats)},
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

func (a *adminAPI) handleEvents(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	if format := r.URL.Query().Get("format"); format != "" && format != "json" {
		return serveEventExport(w, r, app, format) // admin_stream.go
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
