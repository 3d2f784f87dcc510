package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
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
	logger       *zap.Logger
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
		require: c.Require, maxLifetime: c.maxLifetime(), leeway: c.leeway(), logger: logger,
	}, nil
}

var (
	errSessionRevoked   = errors.New("session has been revoked")
	errSessionInvalid   = errors.New("session token is not valid")
	errSessionRequired  = errors.New("a session is required")
	errSessionAmbiguous = errors.New("request carries too many session tokens")
)

// sessionDenial is the 401 authenticate decided on, sent only once the
// request's intrusion probes have been looked at (a scanner without a
// session is still recorded and blocked). The zero value denies nothing.
type sessionDenial struct {
	err       error
	tokenSent bool // WWW-Authenticate invalid_token, cookie cleared
}

// authenticate identifies the request's session. It returns the verified,
// unrevoked identity (nil for anonymous requests) or the refusal to send.
// The signature is verified (or found in the cache of earlier
// verifications) before any claim is read, and revocation is looked up only
// for verified tokens, in the in-process decision cache.
//
// Every candidate token is examined (each copy of the cookie, each bearer
// credential: the app might read any of them), so a duplicate cannot hide a
// revoked token: one revoked candidate refuses the request. The identity is
// the verified candidates' user only when they all name the same user.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, login bool, now time.Time) (*identity, sessionDenial) {
	s := h.sessions
	var toks tokenSet
	sole, ok := s.cachedSole(r, now)
	if ok {
		toks.n = 1
	} else {
		s.extractTokens(r, &toks)
	}
	enforce := !login && !h.MonitorOnly
	if toks.n == 0 && !toks.overflow {
		if s.require && enforce {
			sessionVerifications.WithLabelValues("missing").Inc()
			enforcedRequests.WithLabelValues("session_required").Inc()
			return nil, sessionDenial{err: errSessionRequired}
		}
		return nil, sessionDenial{}
	}
	var id *identity
	mixed := false
	cache := h.app.store().Cache
	for i, tok := range toks.tok[:toks.n] {
		cid := sole
		if i > 0 || cid == nil {
			cid = s.lookup(r, tok, now)
		}
		if cid == nil {
			continue
		}
		if d, revoked := cache.SessionRevoked(cid.userKey, cid.jti, cid.issued, now); revoked {
			return nil, h.revokedSession(w, r, cid, d, login, now)
		}
		switch {
		case id == nil || id == cid:
			id = cid
		case id.user != cid.user:
			mixed = true
		default:
			// two tokens of one user: only what both grant
			id = id.common(cid)
		}
	}
	if toks.overflow {
		// not every token was examined: the one left out may be revoked,
		// and may be the one the app reads
		verifiedInvalid.Inc()
		if enforce {
			enforcedRequests.WithLabelValues("session_invalid").Inc()
			return nil, sessionDenial{err: errSessionAmbiguous, tokenSent: true}
		}
		return nil, sessionDenial{}
	}
	if mixed {
		id = nil
	}
	if id == nil {
		if s.require && enforce {
			enforcedRequests.WithLabelValues("session_invalid").Inc()
			return nil, sessionDenial{err: errSessionInvalid, tokenSent: true}
		}
		return nil, sessionDenial{}
	}
	if repl != nil {
		repl.Set("http.vigil.user", id.user)
	}
	return id, sessionDenial{}
}

// cachedSole is the fast path of the usual request: one Authorization
// value "Bearer <token>" whose token is in the verification cache. A cached
// token verified, so it is canonical and holds no whitespace, comma, '%' or
// padding: it is the request's only candidate, and nothing needs scanning.
func (s *sessionGuard) cachedSole(r *http.Request, now time.Time) (*identity, bool) {
	if s.cookie != "" {
		return nil, false
	}
	vals := r.Header[s.header]
	if len(vals) != 1 || len(vals[0]) <= 7 || !strings.EqualFold(vals[0][:7], "bearer ") {
		return nil, false
	}
	id, ok := s.cache.get(tokenHash(vals[0][7:]), now)
	if ok {
		verifiedCached.Inc()
	}
	return id, ok
}

// lookup returns the identity of one candidate token, from the cache or
// verified now, or nil when it does not verify.
func (s *sessionGuard) lookup(r *http.Request, token string, now time.Time) *identity {
	sum := tokenHash(token)
	if id, cached := s.cache.get(sum, now); cached {
		verifiedCached.Inc()
		return id
	}
	id, err := s.verify(r.Context(), token, now)
	if err != nil {
		verifiedInvalid.Inc()
		if ce := s.logger.Check(zap.DebugLevel, "session token not accepted"); ce != nil {
			ce.Write(zap.String("client_ip", clientIP(r).String()), zap.Error(err))
		}
		return nil
	}
	verifiedFresh.Inc()
	s.cache.put(sum, id, now)
	return id
}

// revokedSession handles a verified but revoked token: the refusal (and the
// first refusal's SESSION_REVOKED event), except on a login route, where
// the stale token of a user logging in again is ignored (its cookie is
// still cleared), and on monitor_only sites.
func (h *Handler) revokedSession(w http.ResponseWriter, r *http.Request, id *identity, d respond.Decision, login bool, now time.Time) sessionDenial {
	sessionVerifications.WithLabelValues("revoked").Inc()
	if login && !h.MonitorOnly {
		h.clearCookie(w, r)
		return sessionDenial{}
	}
	if id.refusedOnce.CompareAndSwap(false, true) {
		ev := h.newEvent(detect.SessionRevoked, r, id.user, clientIP(r), now)
		ev.Details = map[string]any{"refused": true, "jti": id.jti, "revocation": string(d.Kind), "reason": d.Reason, "path": detect.DisplayUser(r.URL.Path)}
		h.app.Record(ev)
	}
	if h.MonitorOnly {
		return sessionDenial{}
	}
	enforcedRequests.WithLabelValues("revoked").Inc()
	return sessionDenial{err: errSessionRevoked, tokenSent: true}
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
func (h *Handler) refuseSession(w http.ResponseWriter, r *http.Request, d sessionDenial) error {
	hdr := w.Header()
	if !d.tokenSent {
		hdr.Set("WWW-Authenticate", "Bearer")
		return caddyhttp.Error(http.StatusUnauthorized, d.err)
	}
	hdr.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	h.clearCookie(w, r)
	return caddyhttp.Error(http.StatusUnauthorized, d.err)
}

// clearCookie expires a cookie session's cookie (Path=/, no Domain). It is
// Secure on TLS requests and always for the __Secure- and __Host- prefixes,
// which browsers accept only with Secure (Vigil may sit behind a proxy
// that ended TLS, with r.TLS nil).
func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	c := h.sessions.cookie
	if c == "" {
		return
	}
	secure := r.TLS != nil || strings.HasPrefix(c, "__Secure-") || strings.HasPrefix(c, "__Host-")
	clear := &http.Cookie{Name: c, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	w.Header().Add("Set-Cookie", clear.String())
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
// revocation lifetime (see sessionGuard.revocationTTL) any of its sites
// needs, or the default one when none verifies sessions.
func revocationTTL(app *App) time.Duration {
	sessionSites.Lock()
	defer sessionSites.Unlock()
	ttl := time.Duration(0)
	for _, l := range sessionSites.m[app] {
		ttl = max(ttl, l)
	}
	if ttl == 0 {
		return revocationLifetime(defaultMaxLifetime, defaultLeeway)
	}
	return ttl
}

// revocationLifetime is how long a revocation must last so that no token it
// covers is accepted after it ends. A token is accepted only while
// now < exp + leeway, and only when exp − ⌊iat⌋ ≤ max_lifetime + leeway; a
// revocation made at C covers tokens with ⌊iat⌋ ≤ ⌊C⌋. So a covered token
// stops being accepted before C + max_lifetime + 2×leeway.
func revocationLifetime(maxLifetime, leeway time.Duration) time.Duration {
	return maxLifetime + 2*leeway
}
