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
// revocation only for tokens whose signature verified, in the local
// decision cache.
//
// Every token the request carries is examined, wherever an app might read
// it: each copy of the configured cookie or header, and also the
// Authorization header, cookies that hold a JWT, and access_token in the
// query or a form body. One revoked token refuses the request, even one that
// is otherwise refused (expired, beyond max_lifetime): the app may accept
// what Vigil does not. The identity comes from the configured place only,
// and only when every verified token names the same user: two verified
// identities make the request anonymous (401 under require), since Vigil
// cannot know which one the app will act as.
func (c identifier) Check(req *detect.Request) *detect.Refusal {
	d, now := c.d, req.Start
	var toks, others tokenSet
	sole, ok := d.cachedSole(req.HTTP, now)
	if ok {
		toks.n = 1
	} else {
		d.extractTokens(req.HTTP, &toks)
	}
	d.extractOthers(req.HTTP, &others, &toks)
	enforce := req.Login == nil && !d.opt.MonitorOnly
	if toks.n == 0 && others.n == 0 && !toks.overflow && !others.overflow {
		if d.opt.Require && enforce {
			call(d.opt.Hooks.Missing)
			req.SessionDenial = &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionRequired, Action: "session_required"}
		}
		return nil
	}
	var v verdict
	for i, tok := range toks.tok[:toks.n] {
		cid, accepted := sole, true
		if i > 0 || cid == nil {
			cid, accepted = d.lookup(req, tok)
		}
		if v.add(d, req, cid, accepted, true) {
			return nil
		}
	}
	for _, tok := range others.tok[:others.n] {
		cid, accepted := d.lookup(req, tok)
		if v.add(d, req, cid, accepted, false) {
			return nil
		}
	}
	if toks.overflow || others.overflow {
		// not every token was examined: the one left out may be revoked,
		// and may be the one the app reads
		call(d.opt.Hooks.Invalid)
		if enforce {
			req.SessionDenial = &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionAmbiguous, Action: "session_invalid"}
		}
		return nil
	}
	id := v.identity()
	if id == nil && d.opt.Require && enforce {
		req.SessionDenial = &detect.Refusal{Status: http.StatusUnauthorized, Err: errSessionInvalid, Action: "session_invalid"}
	}
	req.Identity = id
	return nil
}

// verdict gathers what a request's tokens say.
type verdict struct {
	id    *detect.Identity // from the configured place
	other string           // a user verified elsewhere
	mixed bool
}

// add takes one candidate into account; it reports true when the
// candidate is revoked (the request's refusal is then decided).
func (v *verdict) add(d *Detector, req *detect.Request, cid *detect.Identity, accepted, configured bool) bool {
	if cid == nil {
		return false
	}
	if rev, revoked := d.opt.Responder.Revoked(cid, req.Start); revoked {
		req.SessionDenial = d.revoked(req, cid, rev)
		return true
	}
	if !accepted {
		return false
	}
	switch {
	case !configured:
		if v.other != "" && v.other != cid.User {
			v.mixed = true
		}
		v.other = cid.User
	case v.id == nil || v.id == cid:
		v.id = cid
	case v.id.User != cid.User:
		v.mixed = true
	default:
		// two tokens of one user: only what both grant
		v.id = v.id.Common(cid)
	}
	return false
}

func (v *verdict) identity() *detect.Identity {
	if v.mixed || v.id != nil && v.other != "" && v.other != v.id.User {
		return nil
	}
	return v.id
}

// cachedSole is the fast path of the usual request: one Authorization
// value "Bearer <token>" whose token is in the verification cache. A cached
// token verified, so it is canonical and holds no whitespace, comma, '%' or
// padding: it is the request's only candidate from the configured place.
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
// verified now, and whether it is accepted; a token whose signature does
// not verify gives nil, one that verifies but is refused (expired…) an
// identity for revocation checks only.
func (d *Detector) lookup(req *detect.Request, token string) (*detect.Identity, bool) {
	sum, now := tokenHash(token), req.Start
	if id, cached := d.cache.get(sum, now); cached {
		call(d.opt.Hooks.Cached)
		return id, true
	}
	id, err := d.verify(req.HTTP.Context(), token, now)
	if err != nil {
		call(d.opt.Hooks.Invalid)
		d.opt.Logger.Debug("session token not accepted", "client_ip", req.IP.String(), "error", err)
		return id, false
	}
	call(d.opt.Hooks.Verified)
	d.cache.put(sum, id, now)
	return id, true
}

// verify checks a token not seen (or no longer cached) and reads its
// claims. A token whose signature verifies but which is refused comes back
// with an identity for revocation checks and the reason.
func (d *Detector) verify(ctx context.Context, token string, now time.Time) (*detect.Identity, error) {
	claims, err := d.verifier.parse(ctx, token)
	if claims == nil {
		return nil, fmt.Errorf("verifying session token: %w", err)
	}
	if err == nil {
		var id *detect.Identity
		if id, err = newIdentity(claims, d.claims, d.opt.MaxLifetime+d.opt.Leeway, now); err == nil {
			return id, nil
		}
	}
	return signedIdentity(claims, d.claims), fmt.Errorf("session token refused: %w", err)
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
