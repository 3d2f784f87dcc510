package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// TestSessionAdaptErrors: bad session, restrict, honeypot and probe options
// are refused with a message naming the problem and the line.
func TestSessionAdaptErrors(t *testing.T) {
	cases := []struct{ name, site, want string }{
		{"session kind", "vigil {\n\tsession opaque {\n\t}\n}", "want session jwt"},
		{"session unknown option", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t\tfrobnicate\n\t}\n}", `unknown session jwt option "frobnicate"`},
		{"session no key", "vigil {\n\tsession jwt {\n\t\trequire\n\t}\n}", "at least one key or jwks"},
		{"session bad alg", "vigil {\n\tsession jwt {\n\t\tkey none x\n\t}\n}", `unknown algorithm "none"`},
		{"session key args", "vigil {\n\tsession jwt {\n\t\tkey rs256\n\t}\n}", "want hs256 <secret> or <alg> <pem-file>"},
		{"session header and cookie", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t\theader X-T\n\t\tcookie c\n\t}\n}", "not both"},
		{"jwks not a URL", "vigil {\n\tsession jwt {\n\t\tjwks ftp://x/jwks\n\t}\n}", "is not an http(s) URL"},
		{"jwks hmac", "vigil {\n\tsession jwt {\n\t\tjwks https://x/jwks hs256\n\t}\n}", "not an asymmetric"},
		{"leeway", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t\tleeway soon\n\t}\n}", `leeway: "soon" is not a valid duration`},
		{"session twice", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t}\n\tsession jwt {\n\t\tkey hs256 s\n\t}\n}", "given twice"},
		{"restrict without session", "vigil {\n\trestrict /admin/* role admin\n}", "needs a session jwt"},
		{"restrict syntax", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t}\n\trestrict /admin/* admin\n}", "want <path> role <role>"},
		{"restrict no role", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t}\n\trestrict /admin/* role claim groups\n}", "at least one role"},
		{"restrict misplaced claim", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t}\n\trestrict /admin/* role a claim b c\n}", `"claim" is misplaced`},
		{"restrict bad path", "vigil {\n\tsession jwt {\n\t\tkey hs256 s\n\t}\n\trestrict admin role a\n}", "must start with /"},
		{"violations", "vigil {\n\tviolations 0 within 5m\n}", `violations: "0" is not a positive count`},
		{"terminate unknown type", "vigil {\n\tterminate_sessions_on ACCOUNT_LOCKD\n}", "unknown event type"},
		{"terminate none and types", "vigil {\n\tterminate_sessions_on none ACCOUNT_LOCKED\n}", "none excludes"},
		{"terminate on revocation", "vigil {\n\tterminate_sessions_on SESSION_REVOKED\n}", "cannot end sessions"},
		{"honeypot relative", "vigil {\n\thoneypot wp-admin\n}", "must start with /"},
		{"honeypot empty", "vigil {\n\thoneypot\n}", "wrong argument count"},
		{"probes unknown", "vigil {\n\tprobes {\n\t\tparanoia on\n\t}\n}", `unknown probes option "paranoia"`},
		{"probes on/off", "vigil {\n\tprobes {\n\t\tsignatures maybe\n\t}\n}", `signatures: "maybe" is not on or off`},
		{"probes scan", "vigil {\n\tprobes {\n\t\tscan 1 within 1m\n\t}\n}", "at least 2 paths"},
		{"probes scan syntax", "vigil {\n\tprobes {\n\t\tscan 10 in 1m\n\t}\n}", "probes scan: want <count> within <duration>"},
		{"probes arg", "vigil {\n\tprobes on\n}", "want probes off, or a block"},
		{"intrusion_ban max", "vigil {\n\tintrusion_ban 1h max 1m\n}", "max no shorter"},
		{"intrusion_ban syntax", "vigil {\n\tintrusion_ban forever\n}", `"forever" is not a positive duration`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ":8080 {\n" + c.site + "\n}\n"
			wantAdaptError(t, in, c.want)
		})
	}
}

// TestSessionProvisionErrors: keys that cannot work fail at provisioning
// with a clear message, never at the first request.
func TestSessionProvisionErrors(t *testing.T) {
	ecPEM := writePEM(t, &sharedKeys.ec.PublicKey)
	for name, c := range map[string]struct {
		key  JWTKey
		want string
	}{
		"short secret":   {JWTKey{Alg: "hs256", Secret: "short"}, "use at least 32"},
		"missing file":   {JWTKey{Alg: "rs256", PEMFile: "/nonexistent.pem"}, "reading key"},
		"wrong key type": {JWTKey{Alg: "rs256", PEMFile: ecPEM}, "cannot verify RS256"},
		"wrong curve":    {JWTKey{Alg: "es384", PEMFile: ecPEM}, "cannot verify ES384"},
		"unset variable": {JWTKey{Alg: "hs256", Secret: "{env.VIGIL_TEST_UNSET_SECRET}"}, "session jwt key hs256: {env.VIGIL_TEST_UNSET_SECRET} is empty or unset"},
	} {
		h := &Handler{Session: &SessionConfig{JWT: &JWTConfig{Keys: []JWTKey{c.key}}}}
		if err := h.Validate(); err != nil {
			t.Fatalf("%s: validate: %v", name, err)
		}
		if err := h.setup(testApp(t)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzTokenExtractor feeds arbitrary Authorization and Cookie values through
// extraction and verification: the answer is anonymous or 401, never a
// panic, and never a user.
func FuzzTokenExtractor(f *testing.F) {
	f.Add("Bearer a.b.c", "sid=a.b.c")
	f.Add("bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.x", `sid="x"; sid=y`)
	c := newClock()
	app := testApp(f)
	header := sessionHandler(f, app, c, &JWTConfig{Require: true})
	cookie := sessionHandler(f, app, c, &JWTConfig{Cookie: "sid"})
	f.Fuzz(func(t *testing.T, auth, cookies string) {
		up := &userApp{}
		code, _ := call(t, header, up, "GET", "/x", "198.51.100.1", http.Header{"Authorization": {auth}})
		if code != http.StatusUnauthorized || len(up.users) != 0 {
			t.Fatalf("header %q: %d, upstream %v", auth, code, up.users)
		}
		call(t, cookie, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {cookies}})
		for _, u := range up.users {
			if u != "" {
				t.Fatalf("cookie %q identified %q", cookies, u)
			}
		}
	})
}
