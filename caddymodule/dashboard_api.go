package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/dashboard"
	"github.com/vigilsec/vigil/respond"
)

// dashboardWindows are the windows the page offers (and the only ones its
// overview accepts, so a page cannot ask for an unbounded scan).
var dashboardWindows = map[string]time.Duration{
	"15m": 15 * time.Minute, "1h": time.Hour, "6h": 6 * time.Hour, "24h": 24 * time.Hour, "168h": 7 * 24 * time.Hour,
}

// serveAPI answers the page's own JSON API: GET overview, events, user,
// ip; POST action (CSRF-protected).
func (d *Dashboard) serveAPI(w http.ResponseWriter, r *http.Request, name, op string) error {
	if name == "action" {
		if r.Method != http.MethodPost {
			return apiFail(w, http.StatusMethodNotAllowed, "use POST")
		}
		if err := dashboard.CheckCSRF(r); err != nil {
			return apiFail(w, http.StatusForbidden, "refused: %v", err)
		}
		return d.act(w, r, op)
	}
	if r.Method != http.MethodGet {
		return apiFail(w, http.StatusMethodNotAllowed, "use GET")
	}
	store, q, now := d.app.store(), r.URL.Query(), time.Now()
	inv := dashboard.Investigate{Store: store, Now: now, Locate: d.app.locate()}
	var v any
	var err error
	switch name {
	case "overview":
		v, err = d.overview(r, q.Get("window"), op)
	case "events":
		f, ferr := parseEventFilter(q)
		if ferr != nil {
			return apiFail(w, http.StatusBadRequest, "%v", ferr)
		}
		page, qerr := store.Events.Query(r.Context(), f)
		if page.Events == nil {
			page.Events = []detect.Event{}
		}
		v, err = page, qerr
	case "user":
		v, err = inv.User(r.Context(), q.Get("name"))
	case "ip":
		v, err = inv.IP(r.Context(), q.Get("addr"))
	default:
		return apiFail(w, http.StatusNotFound, "no such API")
	}
	if err != nil {
		return apiFail(w, http.StatusBadRequest, "%v", err)
	}
	return writeJSON(w, http.StatusOK, v)
}

func apiFail(w http.ResponseWriter, status int, format string, args ...any) error {
	return writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// overview is the page's summary: the window's series, the active
// decisions.
func (d *Dashboard) overview(r *http.Request, window, op string) (any, error) {
	span, ok := dashboardWindows[window]
	if !ok {
		span = time.Hour
	}
	now := time.Now()
	q := dashboard.StatsQuery{From: now.Add(-span), To: now}
	if err := q.Normalize(); err != nil {
		return nil, err
	}
	s, err := dashboard.Stats(r.Context(), d.app.store().Events, q)
	if err != nil {
		return nil, err
	}
	ds, err := d.app.store().Decisions.List(r.Context(), now)
	if err != nil {
		return nil, err
	}
	return map[string]any{"operator": op, "stats": s, "decisions": respond.Listing(ds, respond.DecisionFilter{})}, nil
}

// dashboardAction is the body of POST api/action.
type dashboardAction struct {
	Action   string `json:"action"` // block, unblock, lock, unlock, revoke, unrevoke
	Target   string `json:"target"`
	Kind     string `json:"kind,omitempty"` // unrevoke: revoke_user (default) or revoke_jti
	Duration string `json:"duration,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// act performs one operator action through the responder core, recorded
// as ADMIN_ACTION with the operator's name.
func (d *Dashboard) act(w http.ResponseWriter, r *http.Request, op string) error {
	var a dashboardAction
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return apiFail(w, http.StatusBadRequest, "decoding the action: %v", err)
	}
	if len(a.Reason) > 1024 {
		return apiFail(w, http.StatusBadRequest, "reason is longer than 1024 bytes")
	}
	dur := defaultManualDuration
	if a.Duration != "" {
		v, err := caddy.ParseDuration(a.Duration)
		if err != nil || v <= 0 {
			return apiFail(w, http.StatusBadRequest, "duration %q is not a positive duration", a.Duration)
		}
		dur = v
	}
	who := respond.Operator{Remote: clientAddr(r), User: op}
	status, v, err := d.perform(r, a, dur, who)
	if err != nil {
		return apiFail(w, status, "%v", err)
	}
	return writeJSON(w, status, v)
}

var errNotActive = errors.New("no such decision in force")

func (d *Dashboard) perform(r *http.Request, a dashboardAction, dur time.Duration, who respond.Operator) (int, any, error) {
	core, ctx := d.app.core, r.Context()
	reason := a.Reason
	if reason == "" {
		reason = "dashboard"
	}
	var kind respond.Kind
	switch a.Action {
	case "block", "unblock":
		kind = respond.Block
	case "lock", "unlock":
		kind = respond.Lock
	case "revoke":
		user, err := respond.CanonicalTarget(respond.RevokeUser, a.Target)
		if err != nil {
			return http.StatusBadRequest, nil, err
		}
		dec, err := core.RevokeByOperator(ctx, respond.Revocation{Kind: respond.RevokeUser, Target: user, Reason: reason}, who)
		if err != nil {
			return http.StatusBadGateway, nil, err
		}
		return http.StatusCreated, dec, nil
	case "unrevoke":
		kind = respond.RevokeUser
		if a.Kind == string(respond.RevokeJTI) {
			kind = respond.RevokeJTI
		}
	default:
		return http.StatusBadRequest, nil, fmt.Errorf("unknown action %q", a.Action)
	}
	target, err := respond.CanonicalTarget(kind, a.Target)
	if err != nil {
		return http.StatusBadRequest, nil, err
	}
	if a.Action == "block" || a.Action == "lock" {
		now := time.Now().UTC()
		dec := respond.Decision{Kind: kind, Target: target, Reason: reason, Source: "admin", Strike: 1, Created: now, Until: now.Add(dur)}
		if err := core.Impose(ctx, dec, who); err != nil {
			return http.StatusBadGateway, nil, err
		}
		return http.StatusCreated, dec, nil
	}
	was, err := core.Lift(ctx, kind, target, who)
	if err != nil {
		return http.StatusBadGateway, nil, err
	}
	if !was {
		return http.StatusNotFound, nil, fmt.Errorf("%w: %s %s", errNotActive, kind, target)
	}
	return http.StatusOK, map[string]any{"lifted": true, "kind": kind, "target": target}, nil
}

// clientAddr is the client's address as Caddy determined it (honouring
// trusted_proxies), else the connection's.
func clientAddr(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// locate is the app's GeoIP lookup, or nil without one.
func (a *App) locate() func(netip.Addr) detect.Place {
	if a.locator == nil {
		return nil
	}
	return a.locator.Locate
}
