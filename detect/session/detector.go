// Package session verifies a site's session tokens (JWT) and enforces
// their revocation: the verified user becomes the request's identity, a
// revoked token is refused (401), and on `require` sites so is a request
// without a valid session.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Responder is what the session detector needs of respond.Responder.
type Responder interface {
	detect.Actor
	// Revoked reports the revocation that ends a verified session, from
	// the local decision cache.
	Revoked(id *detect.Identity, now time.Time) (detect.Revocation, bool)
}

// Hooks count tokens by result. Nil fields are skipped.
type Hooks struct {
	Verified, Cached, Invalid, Revoked, Missing func()
}

// Detector is the runtime form of a `session jwt` block.
type Detector struct {
	opt          Options
	verifier     *jwtVerifier
	cache        *verifyCache
	customHeader bool // not Authorization: a bare token is accepted too
	claims       claimNames
}

// New loads the keys and starts the JWKS refresher, which stops with ctx
// or Close.
func New(ctx context.Context, opt Options) (*Detector, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.Header = http.CanonicalHeaderKey(orString(opt.Header, "Authorization"))
	opt.UserClaim, opt.RolesClaim = orString(opt.UserClaim, "sub"), orString(opt.RolesClaim, "roles")
	if opt.CacheSize == 0 {
		opt.CacheSize = DefaultCacheSize
	}
	v, err := newJWTVerifier(ctx, &opt)
	if err != nil {
		return nil, err
	}
	return &Detector{opt: opt, verifier: v, cache: newVerifyCache(opt.CacheSize),
		customHeader: opt.Header != "Authorization",
		claims:       claimNames{user: opt.UserClaim, roles: opt.RolesClaim, extra: opt.ExtraClaims}}, nil
}

// Close stops the JWKS refresher.
func (d *Detector) Close() { d.verifier.close() }

// Lifetime is how long a revocation must last for this site's tokens.
func (d *Detector) Lifetime() time.Duration {
	return RevocationLifetime(d.opt.MaxLifetime, d.opt.Leeway)
}

var (
	errSessionRevoked   = errors.New("session has been revoked")
	errSessionInvalid   = errors.New("session token is not valid")
	errSessionRequired  = errors.New("a session is required")
	errSessionAmbiguous = errors.New("request carries too many session tokens")
)

// Identify is the check that identifies the request's session. It never
// refuses by itself: a refusal is left in Request.SessionDenial, answered
// by Enforce once the probe checks have run.
func (d *Detector) Identify() detect.Check { return identifier{d} }

// Enforce is the check that answers the refusal Identify decided on.
func (d *Detector) Enforce() detect.Check { return enforcer{d} }

type identifier struct{ d *Detector }

// Check verifies the signature of each candidate token (or finds it in the
// cache of earlier verifications) before any claim is read, and looks up
// revocation only for verified tokens, in the local decision cache.
//
// Every candidate is examined (each copy of the cookie, each bearer
// credential: the app might read any of them), so a duplicate cannot hide a
// revoked token: one revoked candidate refuses the request. The identity is
// the verified candidates' user only when they all name the same user.
func (c identifier) Check(req *detect.Request) *detect.Refusal {
	d, now := c.d, req.Start
	var toks tokenSet
	sole, ok := d.cachedSole(req.HTTP, now)
	if ok {
		toks.n = 1
	} else {
		d.extractTokens(req.HTTP, &toks)
	}
	enforce := req.Login == nil && !d.opt.MonitorOnly
	if toks.n == 0 && !toks.overflow {
		if d.opt.Require && enforce {
			call(d.opt.Hooks.Missing)
			req.SessionDenial = &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionRequired, Action: "session_required"}
		}
		return nil
	}
	var id *detect.Identity
	mixed := false
	for i, tok := range toks.tok[:toks.n] {
		cid := sole
		if i > 0 || cid == nil {
			cid = d.lookup(req, tok)
		}
		if cid == nil {
			continue
		}
		if rev, revoked := d.opt.Responder.Revoked(cid, now); revoked {
			req.SessionDenial = d.revoked(req, cid, rev)
			return nil
		}
		switch {
		case id == nil || id == cid:
			id = cid
		case id.User != cid.User:
			mixed = true
		default:
			// two tokens of one user: only what both grant
			id = id.Common(cid)
		}
	}
	if toks.overflow {
		// not every token was examined: the one left out may be revoked,
		// and may be the one the app reads
		call(d.opt.Hooks.Invalid)
		if enforce {
			req.SessionDenial = &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionAmbiguous, Action: "session_invalid"}
		}
		return nil
	}
	if mixed {
		id = nil
	}
	if id == nil && d.opt.Require && enforce {
		req.SessionDenial = &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionInvalid, Action: "session_invalid"}
	}
	req.Identity = id
	return nil
}

// cachedSole is the fast path of the usual request: one Authorization
// value "Bearer <token>" whose token is in the verification cache. A cached
// token verified, so it is canonical and holds no whitespace, comma, '%' or
// padding: it is the request's only candidate, and nothing needs scanning.
func (d *Detector) cachedSole(r *http.Request, now time.Time) (*detect.Identity, bool) {
	if d.opt.Cookie != "" {
		return nil, false
	}
	vals := r.Header[d.opt.Header]
	if len(vals) != 1 || len(vals[0]) <= 7 || !strings.EqualFold(vals[0][:7], "bearer ") {
		return nil, false
	}
	id, ok := d.cache.get(tokenHash(vals[0][7:]), now)
	if ok {
		call(d.opt.Hooks.Cached)
	}
	return id, ok
}

// lookup returns the identity of one candidate token, from the cache or
// verified now, or nil when it does not verify.
func (d *Detector) lookup(req *detect.Request, token string) *detect.Identity {
	sum, now := tokenHash(token), req.Start
	if id, cached := d.cache.get(sum, now); cached {
		call(d.opt.Hooks.Cached)
		return id
	}
	id, err := d.verify(req.HTTP.Context(), token, now)
	if err != nil {
		call(d.opt.Hooks.Invalid)
		d.opt.Logger.Debug("session token not accepted", "client_ip", req.IP.String(), "error", err)
		return nil
	}
	call(d.opt.Hooks.Verified)
	d.cache.put(sum, id, now)
	return id
}

// verify checks a token not seen (or no longer cached) and reads its claims.
func (d *Detector) verify(ctx context.Context, token string, now time.Time) (*detect.Identity, error) {
	claims, err := d.verifier.parse(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("verifying session token: %w", err)
	}
	return newIdentity(claims, d.claims, d.opt.MaxLifetime+d.opt.Leeway, now)
}

// revoked handles a verified but revoked token: the refusal (and the first
// refusal's SESSION_REVOKED event), except on a login route, where the
// stale token of a user logging in again is ignored (its cookie is still
// cleared), and on monitor_only sites.
func (d *Detector) revoked(req *detect.Request, id *detect.Identity, rev detect.Revocation) *detect.Refusal {
	call(d.opt.Hooks.Revoked)
	if req.Login != nil && !d.opt.MonitorOnly {
		d.clearCookie(req)
		return nil
	}
	if id.FirstRefusal() {
		f := req.Facts()
		f.User = id.User
		d.opt.Responder.Act(context.WithoutCancel(req.HTTP.Context()), detect.Finding{
			Type: detect.SessionRevoked, Time: req.Start, Facts: f,
			Details: detect.Details{"refused": true, "jti": id.JTI, "revocation": rev.Kind, "reason": rev.Reason},
		})
	}
	if d.opt.MonitorOnly {
		return nil
	}
	return &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionRevoked, Action: "revoked"}
}

type enforcer struct{ d *Detector }

// Check answers 401 the RFC 6750 way; a cookie session whose token was
// refused also gets its cookie cleared, so a browser stops sending it.
func (c enforcer) Check(req *detect.Request) *detect.Refusal {
	ref := req.SessionDenial
	if ref == nil {
		return nil
	}
	if ref.Err == errSessionRequired {
		req.Answer.Set("WWW-Authenticate", "Bearer")
		return ref
	}
	req.Answer.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	c.d.clearCookie(req)
	return ref
}

// clearCookie expires a cookie session's cookie (Path=/, no Domain). It is
// Secure on TLS requests and always for the __Secure- and __Host- prefixes,
// which browsers accept only with Secure (Vigil may sit behind a proxy
// that ended TLS, with r.TLS nil).
func (d *Detector) clearCookie(req *detect.Request) {
	c := d.opt.Cookie
	if c == "" {
		return
	}
	secure := req.HTTP.TLS != nil || strings.HasPrefix(c, "__Secure-") || strings.HasPrefix(c, "__Host-")
	clear := &http.Cookie{Name: c, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	req.Answer.Add("Set-Cookie", clear.String())
}

// extractTokens collects the request's candidate session tokens.
func (d *Detector) extractTokens(r *http.Request, t *tokenSet) {
	if d.opt.Cookie != "" {
		cookieTokens(r.Header, d.opt.Cookie, t)
		return
	}
	for _, v := range r.Header[d.opt.Header] {
		bearerTokens(v, d.customHeader, t)
	}
}

func call(f func()) {
	if f != nil {
		f()
	}
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
