package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
)

// sessionGuard is the runtime form of a `session jwt` block.
type sessionGuard struct {
	verifier     *jwtVerifier
	cache        *verifyCache
	header       string // canonical header name
	customHeader bool   // not Authorization: a bare token is accepted too
	cookie       string
	userClaim    string
	rolesClaim   string
	extraClaims  []string // claims restrict rules read roles from
	require      bool
	maxLifetime  time.Duration
	leeway       time.Duration
}

func newSessionGuard(ctx context.Context, c *JWTConfig, now func() time.Time, logger *zap.Logger) (*sessionGuard, error) {
	v, err := newJWTVerifier(ctx, c, now, logger)
	if err != nil {
		return nil, err
	}
	header := http.CanonicalHeaderKey(orString(c.Header, "Authorization"))
	size := c.CacheSize
	if size == 0 {
		size = defaultCacheSize
	}
	return &sessionGuard{
		verifier: v, cache: newVerifyCache(size),
		header: header, customHeader: header != "Authorization", cookie: c.Cookie,
		userClaim: orString(c.UserClaim, "sub"), rolesClaim: orString(c.RolesClaim, "roles"),
		require: c.Require, maxLifetime: c.maxLifetime(), leeway: c.leeway(),
	}, nil
}

var (
	errSessionRevoked  = errors.New("session has been revoked")
	errSessionInvalid  = errors.New("session token is not valid")
	errSessionRequired = errors.New("a session is required")
)

// authenticate identifies the request's session. It returns the verified,
// unrevoked identity (nil for anonymous requests) or the refusal to send.
// The signature is verified (or found in the cache of earlier
// verifications) before any claim is read, and revocation is looked up only
// for verified tokens, in the in-process decision cache.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, login bool, now time.Time) (*identity, error) {
	s := h.sessions
	token := s.extractToken(r)
	enforce := !login && !h.MonitorOnly
	if token == "" {
		if s.require && enforce {
			sessionVerifications.WithLabelValues("missing").Inc()
			enforcedRequests.WithLabelValues("session_required").Inc()
			return nil, h.refuseSession(w, r, false, errSessionRequired)
		}
		return nil, nil
	}
	sum := tokenHash(token)
	id, cached := s.cache.get(sum, now)
	if cached {
		verifiedCached.Inc()
	} else {
		var err error
		if id, err = s.verify(r.Context(), token, now); err != nil {
			verifiedInvalid.Inc()
			h.logger.Debug("session token not accepted", zap.String("client_ip", clientIP(r).String()), zap.Error(err))
			if s.require && enforce {
				enforcedRequests.WithLabelValues("session_invalid").Inc()
				return nil, h.refuseSession(w, r, true, errSessionInvalid)
			}
			return nil, nil
		}
		verifiedFresh.Inc()
		s.cache.put(sum, id, now)
	}
	if d, revoked := h.app.store().Cache.SessionRevoked(id.userKey, id.jti, id.issued, now); revoked {
		if id.refusedOnce.CompareAndSwap(false, true) {
			ev := h.newEvent(detect.SessionRevoked, r, id.user, clientIP(r), now)
			ev.Details = map[string]any{"refused": true, "jti": id.jti, "revocation": string(d.Kind), "reason": d.Reason, "path": detect.DisplayUser(r.URL.Path)}
			h.app.Record(ev)
		}
		sessionVerifications.WithLabelValues("revoked").Inc()
		if h.MonitorOnly {
			return nil, nil
		}
		enforcedRequests.WithLabelValues("revoked").Inc()
		return nil, h.refuseSession(w, r, true, errSessionRevoked)
	}
	if repl != nil {
		repl.Set("http.vigil.user", id.user)
	}
	return id, nil
}

// verify checks a token not seen (or no longer cached) and reads its claims.
func (s *sessionGuard) verify(ctx context.Context, token string, now time.Time) (*identity, error) {
	claims, err := s.verifier.parse(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("verifying session token: %w", err)
	}
	return newIdentity(claims, s.userClaim, s.rolesClaim, s.extraClaims, s.maxLifetime+s.leeway, now)
}

// refuseSession answers 401 the RFC 6750 way; a cookie session whose token
// was refused also gets its cookie cleared, so a browser stops sending it.
func (h *Handler) refuseSession(w http.ResponseWriter, r *http.Request, tokenSent bool, err error) error {
	hdr := w.Header()
	if !tokenSent {
		hdr.Set("WWW-Authenticate", "Bearer")
		return caddyhttp.Error(http.StatusUnauthorized, err)
	}
	hdr.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	if c := h.sessions.cookie; c != "" {
		clear := &http.Cookie{Name: c, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
		hdr.Add("Set-Cookie", clear.String())
	}
	return caddyhttp.Error(http.StatusUnauthorized, err)
}

// sessionSites remembers, per vigil app, the session lifetimes of the
// handlers that verify sessions: revocations are kept as long as the
// longest, so that no token outlives its revocation.
var sessionSites = struct {
	sync.Mutex
	m map[*App]map[*Handler]time.Duration
}{m: map[*App]map[*Handler]time.Duration{}}

func (h *Handler) registerSessions(lifetime time.Duration) {
	sessionSites.Lock()
	defer sessionSites.Unlock()
	if sessionSites.m[h.app] == nil {
		sessionSites.m[h.app] = map[*Handler]time.Duration{}
	}
	sessionSites.m[h.app][h] = lifetime
}

func (h *Handler) unregisterSessions() {
	sessionSites.Lock()
	defer sessionSites.Unlock()
	delete(sessionSites.m[h.app], h)
	if len(sessionSites.m[h.app]) == 0 {
		delete(sessionSites.m, h.app)
	}
}

// sessionsInUse reports whether a site of app verifies sessions.
func sessionsInUse(app *App) bool {
	sessionSites.Lock()
	defer sessionSites.Unlock()
	return len(sessionSites.m[app]) > 0
}

// revocationTTL is how long a revocation must last for app: the longest
// token lifetime (plus leeway) any of its sites accepts, or the default
// max_lifetime when none verifies sessions.
func revocationTTL(app *App) time.Duration {
	sessionSites.Lock()
	defer sessionSites.Unlock()
	ttl := time.Duration(0)
	for _, l := range sessionSites.m[app] {
		ttl = max(ttl, l)
	}
	if ttl == 0 {
		return defaultMaxLifetime + defaultLeeway
	}
	return ttl
}
