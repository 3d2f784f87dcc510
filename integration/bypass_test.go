package integration

import (
	"net/http"
	"strings"
	"testing"
)

// TestLockedAccountNotReachableThroughBodyTricks: while alice is locked, no
// spelling of a login body that the app reads as alice may reach the app.
// The demo app decodes JSON with encoding/json, as a Go upstream does: for a
// duplicate key the last value wins, and keys match case-insensitively.
func TestLockedAccountNotReachableThroughBodyTricks(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: `login POST /login {
			user form:username
			success redirect_not /login
		}
		login POST /api/login {
			user json:user.name
			success status 200
		}
		lockout 3 within 1m for 1m
		block_ip 100 within 1m for 1m`})

	for i := 0; i < 3; i++ {
		if r := g.apiLogin("alice", "x"); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password: want the app's 401, got %s", r)
		}
	}
	wantRefused(t, g.apiLogin("alice", "wonderland"), http.StatusTooManyRequests, 59, 60)

	const bug = "the gateway read a different username than the app, so a LOCKED account's login reached the app. "
	jsonTricks := []struct{ name, body, why string }{
		{"escaped key", `{"user":{"n\u0061me":"alice"},"password":"wonderland"}`, ""},
		{"whitespace", "{ \"user\" :\n{ \"name\" : \"alice\" } , \"password\":\"wonderland\"}", ""},
		{"duplicate name key", `{"user":{"name":"decoy","name":"alice"},"password":"wonderland"}`,
			"parsers disagree on which duplicate wins (encoding/json, JS, Python, PHP take the last)"},
		{"duplicate user object", `{"user":{"name":"decoy"},"user":{"name":"alice"},"password":"wonderland"}`,
			"parsers disagree on which duplicate wins"},
		{"key case", `{"User":{"Name":"alice"},"password":"wonderland"}`,
			"encoding/json matches keys case-insensitively"},
	}
	for _, c := range jsonTricks {
		t.Run(c.name, func(t *testing.T) {
			before := g.up.hits()
			r := g.do(http.MethodPost, "/api/login", strings.NewReader(c.body), http.Header{"Content-Type": {"application/json"}})
			if g.up.hits() != before || r.Status == http.StatusOK {
				if c.why == "" {
					t.Fatalf("a login for locked alice (%s) reached the app: %s", c.body, r)
				}
				t.Fatalf(bug+"Body %s → %s; the app checked %v. Why it matters: %s", c.body, r, lastAttempt(g.up), c.why)
			}
			if r.Status != http.StatusTooManyRequests && r.Status != http.StatusBadRequest {
				t.Fatalf("want 429 (or 400 for an ambiguous body), got %s", r)
			}
		})
	}

	// a username beyond the first 64 KiB (the handler's max_body default),
	// in a body the app still accepts (it reads login bodies up to 1 MiB)
	const boundBug = "a login body longer than max_body reached the app: the username past the bound was never checked against the locks."
	pad := strings.Repeat("A", 70<<10)
	var mp strings.Builder
	mp.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"pad\"\r\n\r\n" + pad + "\r\n")
	mp.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n")
	mp.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nwonderland\r\n--XyZ--\r\n")
	padTricks := []struct{ name, path, ctype, body string }{
		{"json padding", "/api/login", "application/json", `{"pad":"` + pad + `","user":{"name":"alice"},"password":"wonderland"}`},
		{"form padding", "/login", "application/x-www-form-urlencoded", "pad=" + pad + "&username=alice&password=wonderland"},
		{"multipart padding", "/login", "multipart/form-data; boundary=XyZ", mp.String()},
	}
	for _, c := range padTricks {
		t.Run(c.name, func(t *testing.T) {
			before := g.up.hits()
			r := g.do(http.MethodPost, c.path, strings.NewReader(c.body), http.Header{"Content-Type": {c.ctype}})
			if g.up.hits() != before {
				t.Fatalf(boundBug+" POST %s with %d bytes, username after byte %d → %s; the app checked %v", c.path, len(c.body), strings.Index(c.body, "alice"), r, lastAttempt(g.up))
			}
			if r.Status < 400 {
				t.Fatalf("want a refusal, got %s", r)
			}
		})
	}

	formTricks := []struct{ name, body string }{
		{"plain", "username=alice&password=wonderland"},
		{"case and spaces", "username=+ALICE+&password=wonderland"},
		{"escaped key", "user%6Eame=alice&password=wonderland"},
	}
	for _, c := range formTricks {
		t.Run("form "+c.name, func(t *testing.T) {
			before := g.up.hits()
			r := g.do(http.MethodPost, "/login", strings.NewReader(c.body), formHeader())
			if g.up.hits() != before {
				t.Fatalf("a form login for locked alice (%s) reached the app: %s", c.body, r)
			}
			wantRefused(t, r, http.StatusTooManyRequests, 1, 60)
		})
	}
}

// lastAttempt is the app's latest credential check, for messages.
func lastAttempt(u *upstream) any {
	a := u.attempts()
	if len(a) == 0 {
		return "nothing"
	}
	return a[len(a)-1]
}
