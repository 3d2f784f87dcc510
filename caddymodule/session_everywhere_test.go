package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigilsec/vigil/respond"
)

// formCall is call with an urlencoded body.
func formCall(t *testing.T, h *Handler, up caddyhttp.Handler, body string, hdr http.Header) int {
	t.Helper()
	r := newRequest("POST", "/x", body, "198.51.100.1")
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, up); err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatal(err)
		}
		return he.StatusCode
	}
	return w.Code
}

// TestRevocationWhereverTheAppReadsAToken: on a cookie-configured site, a
// revoked token is refused wherever it travels (the Authorization header,
// another cookie, access_token in the query or a form body), also beside a
// valid session cookie, and also when it is otherwise refused (beyond
// max_lifetime): the app may read it there and act as its user.
func TestRevocationWhereverTheAppReadsAToken(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid"})
	alice := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	bob := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now()))
	longLived := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now(), "exp", c.now().Add(72*time.Hour).Unix()))
	c.advance(time.Second)
	if _, err := app.core.Revoke(context.Background(), respond.Revocation{Kind: respond.RevokeUser, Target: "alice", Reason: "test", Source: "admin"}, c.now()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		target string
		hdr    http.Header
		body   string
	}{
		{"bearer header", "/x", bearer(alice), ""},
		{"bearer beside a valid cookie", "/x", http.Header{"Authorization": {"Bearer " + alice}, "Cookie": {"sid=" + bob}}, ""},
		{"another cookie", "/x", http.Header{"Cookie": {"sid=" + bob + "; token=" + alice}}, ""},
		{"access_token in the query", "/x?access_token=" + alice, nil, ""},
		{"access_token in a form body", "", http.Header{"Cookie": {"sid=" + bob}}, "a=1&access_token=" + alice},
		{"beyond max_lifetime", "/x", bearer(longLived), ""},
	}
	for _, tc := range cases {
		var code int
		if tc.body != "" {
			code = formCall(t, h, up, tc.body, tc.hdr)
		} else {
			code, _ = call(t, h, up, "GET", tc.target, "198.51.100.1", tc.hdr)
		}
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401 (revoked)", tc.name, code)
		}
	}
	// bob alone is fine
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + bob}}); code != http.StatusOK || up.last() != "bob" {
		t.Fatalf("bob's cookie: %d %q", code, up.last())
	}
}

// TestConflictingIdentities: two valid tokens of different users in one
// request (a cookie for bob, a bearer token for carol): Vigil cannot know
// which one the app acts as, so the request is anonymous, and refused
// under require.
func TestConflictingIdentities(t *testing.T) {
	c := newClock()
	for _, require := range []bool{false, true} {
		app, up := testApp(t), &userApp{}
		h := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid", Require: require})
		bob := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now()))
		carol := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("carol", c.now()))
		code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + bob}, "Authorization": {"Bearer " + carol}})
		switch {
		case require && code != http.StatusUnauthorized:
			t.Errorf("require: %d, want 401", code)
		case !require && (code != http.StatusOK || up.last() != ""):
			t.Errorf("without require: %d as %q, want anonymous", code, up.last())
		}
		// the same user in both places is that user
		bob2 := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now(), "jti", "other"))
		if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + bob}, "Authorization": {"Bearer " + bob2}}); code != http.StatusOK || up.last() != "bob" {
			t.Errorf("one user in two places: %d as %q", code, up.last())
		}
	}
}
