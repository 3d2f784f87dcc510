package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func issueToken(t *testing.T) (string, *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	tok := CSRFToken(rec, httptest.NewRequest(http.MethodGet, "http://dash.test/security/", nil), "/security/")
	cs := rec.Result().Cookies()
	if len(cs) != 1 || cs[0].Value != tok || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v for token %q: want one HttpOnly SameSite=Strict cookie holding it", cs, tok)
	}
	return tok, cs[0]
}

func TestCSRF(t *testing.T) {
	tok, cookie := issueToken(t)
	_, other := issueToken(t)
	post := func(mod func(r *http.Request)) error {
		r := httptest.NewRequest(http.MethodPost, "http://dash.test/security/api/action", strings.NewReader("{}"))
		r.Header.Set("Origin", "http://dash.test")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set(CSRFHeader, tok)
		r.AddCookie(cookie)
		mod(r)
		return CheckCSRF(r)
	}
	cases := []struct {
		name string
		mod  func(r *http.Request)
		want error
	}{
		{"valid", func(*http.Request) {}, nil},
		{"no header", func(r *http.Request) { r.Header.Del(CSRFHeader) }, ErrCSRFToken},
		{"no cookie", func(r *http.Request) { r.Header.Del("Cookie") }, ErrCSRFToken},
		{"mismatched", func(r *http.Request) { r.Header.Del("Cookie"); r.AddCookie(other) }, ErrCSRFToken},
		{"malformed", func(r *http.Request) {
			r.Header.Del("Cookie")
			r.AddCookie(&http.Cookie{Name: csrfCookie, Value: "x"})
			r.Header.Set(CSRFHeader, "x")
		}, ErrCSRFToken},
		{"cross origin", func(r *http.Request) { r.Header.Set("Origin", "http://evil.test") }, ErrCrossSite},
		{"other port", func(r *http.Request) { r.Header.Set("Origin", "http://dash.test:8080") }, ErrCrossSite},
		{"null origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, ErrCrossSite},
		{"cross site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, ErrCrossSite},
		{"same site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }, ErrCrossSite},
		{"no origin at all", func(r *http.Request) { r.Header.Del("Origin"); r.Header.Del("Sec-Fetch-Site") }, ErrNoOriginHd},
		{"origin only", func(r *http.Request) { r.Header.Del("Sec-Fetch-Site") }, nil},
	}
	for _, c := range cases {
		if got := post(c.mod); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCSRFTokenKeptAndSecureOverTLS(t *testing.T) {
	tok, cookie := issueToken(t)
	r := httptest.NewRequest(http.MethodGet, "http://dash.test/security/", nil)
	r.AddCookie(cookie)
	rec := httptest.NewRecorder()
	if again := CSRFToken(rec, r, "/security/"); again != tok || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("a session's token changed: %q -> %q", tok, again)
	}
	r = httptest.NewRequest(http.MethodGet, "https://dash.test/security/", nil)
	rec = httptest.NewRecorder()
	CSRFToken(rec, r, "/security/")
	c := rec.Result().Cookies()[0]
	if c.Name != "__Host-vigil_csrf" || !c.Secure || c.Path != "/" {
		t.Fatalf("over HTTPS: %+v, want a Secure __Host- cookie on /", c)
	}
}
