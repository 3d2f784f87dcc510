package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// serveLogin handles a submission to a login route: refuse it if the account
// is locked, otherwise pass it upstream untouched, read the outcome from the
// answer, count it and act on what the counts mean.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request, next handlerFunc, route *LoginRoute, ip netip.Addr, start time.Time) error {
	user, userErr := h.loginUser(r, route)
	if status := refusedBody(userErr); status != 0 && !h.MonitorOnly {
		// an uninspectable login could carry any account name, locked
		// ones included: refuse it, and count it against the address
		loginAttempts.WithLabelValues("refused").Inc()
		enforcedRequests.WithLabelValues("bad_login").Inc()
		h.recordFailure(context.WithoutCancel(r.Context()), r, "", userErr, detect.KeysFor("", clientNet(ip)), ip, start)
		durationLogin.Observe(time.Since(start).Seconds())
		return caddyhttp.Error(status, userErr)
	}
	if d, ok := h.app.store().Cache.Locked(user, start); ok && user != "" && !h.MonitorOnly {
		loginAttempts.WithLabelValues("refused").Inc()
		enforcedRequests.WithLabelValues("lock").Inc()
		durationLogin.Observe(time.Since(start).Seconds())
		return refuse(w, http.StatusTooManyRequests, d.Remaining(start), errLocked)
	}
	if h.app.failClosed() && !h.MonitorOnly {
		loginAttempts.WithLabelValues("refused").Inc()
		enforcedRequests.WithLabelValues("store_down").Inc()
		return refuse(w, http.StatusServiceUnavailable, 5*time.Second, errStoreDown)
	}
	pre := time.Since(start)

	rec := newRecorder(w)
	upstreamErr := next.ServeHTTP(rec, r)
	status := rec.status
	if upstreamErr != nil && status == 0 {
		// the upstream failed before answering (e.g. unreachable): no
		// verdict about the password, so nothing is counted
		return upstreamErr
	}
	if status == 0 {
		status = http.StatusOK
	}

	post := h.now()
	ctx := context.WithoutCancel(r.Context())
	keys := detect.KeysFor(user, clientNet(ip))
	if user != "" && route.succeeded(status, rec.Header()) {
		loginAttempts.WithLabelValues("success").Inc()
		if err := h.app.store().Counter.RecordSuccess(ctx, keys); err != nil {
			h.logger.Debug("clearing login failures", zap.Error(err))
		}
		h.app.Record(h.newEvent(detect.SuccessfulLogin, r, user, ip, post))
	} else {
		loginAttempts.WithLabelValues("failure").Inc()
		h.recordFailure(ctx, r, user, userErr, keys, ip, post)
	}
	durationLogin.Observe((pre + time.Since(post)).Seconds())
	return upstreamErr
}

// loginUser finds the username without consuming the body: what was read is
// put back in front of the rest, so the upstream gets the same bytes.
func (h *Handler) loginUser(r *http.Request, route *LoginRoute) (string, error) {
	if route.User.From == "header" {
		return detect.HeaderField(r.Header.Get(route.User.Name))
	}
	if r.Body == nil || r.Body == http.NoBody {
		return "", detect.ErrNoUser
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, h.MaxBodyBytes+1))
	r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), closer: r.Body}
	if err != nil {
		return "", err
	}
	if int64(len(buf)) > h.MaxBodyBytes {
		return "", errBodyTooLarge
	}
	ct := r.Header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ct)
	switch route.User.From {
	case "json":
		return detect.JSONField(buf, route.User.Name)
	case "form":
		if mediaType == "multipart/form-data" {
			return detect.MultipartField(buf, ct, route.User.Name)
		}
		if mediaType == "application/json" {
			// many apps accept JSON on their form login too
			return detect.JSONField(buf, route.User.Name)
		}
		return detect.FormField(buf, route.User.Name)
	}
	return "", detect.ErrNoUser
}

// errBodyTooLarge refuses a login body longer than max_body: the username
// (or a second one) could hide past the part Vigil reads.
var errBodyTooLarge = errors.New("login body larger than max_body")

// refusedBody is the status for a login whose body cannot be attributed to
// one account with certainty, or 0 when it may pass.
func refusedBody(err error) int {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, detect.ErrAmbiguousUser):
		return http.StatusBadRequest
	}
	return 0
}

// replayBody serves the bytes already read, then the rest of the original
// body, and closes the original.
type replayBody struct {
	io.Reader
	closer io.Closer
}

func (b *replayBody) Close() error { return b.closer.Close() }

// recordFailure counts a failed attempt and applies the policy's findings.
// An attempt without a readable username counts against the IP only.
func (h *Handler) recordFailure(ctx context.Context, r *http.Request, user string, userErr error, keys detect.LoginKeys, ip netip.Addr, now time.Time) {
	windows := h.policy.Windows()
	if user == "" {
		windows.Account, windows.Pair, windows.Stuffing = 0, 0, 0
	}
	counts, err := h.app.store().Counter.RecordFailure(ctx, keys, windows, now)
	if err != nil {
		h.logger.Error("counting login failure", zap.Error(err))
	}
	ev := h.newEvent(detect.FailedLogin, r, user, ip, now)
	ev.Details = map[string]any{"account_failures": counts.Account, "ip_failures": counts.IP, "pair_failures": counts.Pair, "accounts_from_ip": counts.AccountsFromIP, "path": detect.DisplayUser(r.URL.Path)}
	if userErr != nil && user == "" {
		ev.Details["user_error"] = userErr.Error()
	}
	h.app.Record(ev)
	if !ip.IsValid() {
		return
	}
	for _, f := range h.policy.AssessFailure(counts) {
		if f.Action == detect.LockAccount && user == "" {
			continue
		}
		h.apply(ctx, r, f, user, keys, ip, now)
	}
}

// apply turns one finding into an event and, when the policy allows, a
// decision. A decision already in force (made by a concurrent request or
// another instance) is not announced again.
func (h *Handler) apply(ctx context.Context, r *http.Request, f detect.Finding, user string, keys detect.LoginKeys, ip netip.Addr, now time.Time) {
	ev := h.newEvent(f.Type, r, user, ip, now)
	ev.Severity = f.Severity
	ev.Details = f.Details
	var kind respond.Kind
	var target string
	switch f.Action {
	case detect.LockAccount:
		kind, target = respond.Lock, user
	case detect.BlockAddress:
		kind, target = respond.Block, clientNet(ip)
		if h.app.allowed(ip) {
			ev.Details["allowlisted"] = true
			h.app.Record(ev)
			h.restartCounters(ctx, kind, keys)
			return
		}
	default:
		h.app.Record(ev)
		return
	}
	if h.MonitorOnly {
		ev.Details["monitor_only"] = true
		h.app.Record(ev)
		h.restartCounters(ctx, kind, keys)
		return
	}
	reason, _ := f.Details["reason"].(string)
	if reason == "" {
		reason = string(f.Type)
	}
	d, fresh := h.impose(r.WithContext(ctx), kind, target, reason, f.Ban, now)
	if !fresh {
		return
	}
	ev.Details["strike"] = d.Strike
	ev.Details["until"] = d.Until.Format(time.RFC3339)
	ev.Details["duration"] = d.Until.Sub(d.Created).String()
	if d.Strike > 1 {
		ev.Severity = max(ev.Severity, detect.High)
	}
	h.app.Record(ev)
	h.restartCounters(ctx, kind, keys)
	if kind == respond.Lock {
		// only a lock names the account's owner: a block's user is just
		// the last account an attacker tried
		h.terminateSessions(ctx, f.Type, user, h.site(r), ip, now)
	}
}

// restartCounters forgets the counters behind a decision, so the next one
// must be earned with fresh failures (the strike count remembers this one)
// and an allowlisted or monitored address does not raise the same finding
// on every further failure.
func (h *Handler) restartCounters(ctx context.Context, kind respond.Kind, keys detect.LoginKeys) {
	store := h.app.store().Counter
	if kind == respond.Lock {
		_ = store.Forget(ctx, detect.AccountCounter, keys.Account)
		return
	}
	_ = store.Forget(ctx, detect.IPCounter, keys.IP)
	_ = store.Forget(ctx, detect.IPAccountsCount, keys.IP)
}
