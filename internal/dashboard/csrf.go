package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// The dashboard's actions (unblock, unlock, revoke …) are POSTs guarded
// against cross-site request forgery three ways, each enough on its own in
// a current browser:
//
//   - a per-session token, sent twice: in a cookie (HttpOnly,
//     SameSite=Strict, __Host- prefixed over HTTPS so a sibling subdomain
//     cannot plant one) and in the X-CSRF-Token header, which the page
//     copies from its own HTML; another site can neither read the page nor
//     set the header;
//   - the Origin header, when present, must name this host;
//   - Sec-Fetch-Site, when present, must be same-origin.
//
// A POST that carries neither Origin nor Sec-Fetch-Site is refused too:
// every browser that runs the page sends one of them.
const (
	CSRFHeader       = "X-CSRF-Token"
	csrfCookie       = "vigil_csrf"
	csrfCookieSecure = "__Host-vigil_csrf"
	tokenBytes       = 32
)

// Errors of CheckCSRF.
var (
	ErrCSRFToken  = errors.New("missing or mismatched CSRF token")
	ErrCrossSite  = errors.New("cross-origin request refused")
	ErrNoOriginHd = errors.New("request carries neither Origin nor Sec-Fetch-Site")
)

func cookieName(r *http.Request) string {
	if r.TLS != nil {
		return csrfCookieSecure
	}
	return csrfCookie
}

// CSRFToken answers the session's token, setting the cookie when the
// request brings none (or a malformed one). path is where the dashboard is
// mounted, the cookie's scope over plain HTTP.
func CSRFToken(w http.ResponseWriter, r *http.Request, path string) string {
	name := cookieName(r)
	if c, err := r.Cookie(name); err == nil && validToken(c.Value) {
		return c.Value
	}
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	c := &http.Cookie{Name: name, Value: tok, Path: path, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if r.TLS != nil {
		c.Secure, c.Path = true, "/" // what the __Host- prefix requires
	}
	http.SetCookie(w, c)
	return tok
}

func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == tokenBytes
}

// CheckCSRF refuses a state-changing request that another site could have
// made: the token header must equal the cookie, and the request must come
// from this origin.
func CheckCSRF(r *http.Request) error {
	origin, site := r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")
	if origin == "" && site == "" {
		return ErrNoOriginHd
	}
	if site != "" && site != "same-origin" {
		return ErrCrossSite
	}
	if origin != "" && !sameHost(origin, r.Host) {
		return ErrCrossSite
	}
	c, err := r.Cookie(cookieName(r))
	hdr := r.Header.Get(CSRFHeader)
	if err != nil || !validToken(c.Value) || hdr == "" ||
		subtle.ConstantTimeCompare([]byte(c.Value), []byte(hdr)) != 1 {
		return ErrCSRFToken
	}
	return nil
}

// sameHost reports whether an Origin names host (the request's Host).
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, host)
}
