package integration

import (
	"bytes"
	"crypto/rand"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// echoPolicy makes POST /echo a login route, so the handler reads the body
// to find the username before the app echoes it back.
const echoPolicy = `login POST /login {
			user form:username
			success redirect_not /login
		}
		login POST /echo {
			user form:username
		}
		block_ip 100 within 1m for 2s`

// onlyReader hides a reader's length, so the request is sent chunked.
type onlyReader struct{ io.Reader }

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoginBodyPassthrough: the app receives a login route's body byte for
// byte, whatever it holds, up to max_body (default 64 KiB); a longer login
// body is refused with 413 because the username could hide past the part
// Vigil reads, unless the operator raises max_body.
func TestLoginBodyPassthrough(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: echoPolicy})

	const password = "p@ss&w=rd%00\x00\xff"
	odd := []byte("username=carol&password=p%40ss%26w%3Drd%2500%00%FF&note=%zz%&raw=\x00\x01\r\n\xfe\xff&=&&empty=")
	odd = append(odd, []byte("&pw2="+password)...)
	big := append([]byte("username=carol&password=x&blob="), randomBytes(t, 60<<10)...)

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("username", "carol")
	_ = mw.WriteField("password", password)
	fw, _ := mw.CreateFormFile("file", "blob.bin")
	_, _ = fw.Write(randomBytes(t, 50<<10))
	_ = mw.Close()

	cases := []struct {
		name    string
		body    []byte
		ctype   string
		chunked bool
	}{
		{"odd bytes", odd, "application/x-www-form-urlencoded", false},
		{"60 KB", big, "application/x-www-form-urlencoded", false},
		{"60 KB chunked", big, "application/x-www-form-urlencoded", true},
		{"multipart", mp.Bytes(), mw.FormDataContentType(), false},
		{"multipart chunked", mp.Bytes(), mw.FormDataContentType(), true},
	}
	for _, c := range cases {
		var body io.Reader = bytes.NewReader(c.body)
		if c.chunked {
			body = onlyReader{body}
		}
		r := g.do(http.MethodPost, "/echo", body, http.Header{"Content-Type": {c.ctype}})
		if r.Status != http.StatusOK {
			t.Fatalf("%s: POST /echo: %s", c.name, r)
		}
		if !bytes.Equal(r.Body, c.body) {
			t.Fatalf("%s: the app got %d bytes that differ from the %d sent (first difference at %d)", c.name, len(r.Body), len(c.body), firstDiff(r.Body, c.body))
		}
	}

	evs := g.waitEvents(q("type", "SUCCESSFUL_LOGIN,FAILED_LOGIN"), "an event per /echo submission", func(evs []event) bool {
		return len(evs) >= len(cases)
	})
	if n := countType(evs, "SUCCESSFUL_LOGIN"); n != len(cases) {
		t.Fatalf("want %d SUCCESSFUL_LOGIN (carol):\n%s", len(cases), dumpEvents(evs))
	}
	_, raw := g.adminDo(http.MethodGet, "/vigil/events?limit=1000", nil)
	if strings.Contains(string(raw), "p@ss") || strings.Contains(string(raw), "p%40ss") {
		t.Fatalf("a password reached the event log: %s", raw)
	}
}

// TestOversizedLoginBody: a login body past max_body never reaches the app
// (413, counted against the address), so padding cannot push a locked
// account's name out of sight; with max_body raised it passes unchanged.
func TestOversizedLoginBody(t *testing.T) {
	t.Parallel()
	huge := append(randomBytes(t, 200<<10), []byte("&username=alice&password=wonderland")...)
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: echoPolicy})
	if r := g.do(http.MethodPost, "/echo", bytes.NewReader(huge), hdr); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("200 KB login body: want 413, got %s", r)
	}
	evs := g.waitEvents(q("type", "FAILED_LOGIN"), "the refused body counted", func(evs []event) bool { return len(evs) == 1 })
	if evs[0].User != "" || evs[0].Details["ip_failures"] != float64(1) {
		t.Fatalf("the refused body must count against the address only:\n%s", dumpEvents(evs))
	}

	raised := startGateway(t, gatewayConfig{Global: "store memory", Policy: echoPolicy + "\n\t\tmax_body 512KiB"})
	r := raised.do(http.MethodPost, "/echo", onlyReader{bytes.NewReader(huge)}, hdr)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, huge) {
		t.Fatalf("with max_body 512KiB the 200 KB body must pass unchanged: %s (%d bytes)", r, len(r.Body))
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestMalformedJSONLogin: a malformed JSON login is refused at the gateway
// (400: an app with a lenient parser might read an account in it) and
// counts against the address.
func TestMalformedJSONLogin(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: `login POST /api/login {
			user json:user.name
			success status 200
		}
		lockout 3 within 1m for 30s
		block_ip 3 within 1m for 30s`})

	bodies := []string{
		`{"user":{"name":"alice"},"password":`,
		`not json at all`,
		`{"user":{"name":` + strings.Repeat("[", 5000),
	}
	for i, b := range bodies {
		r := g.do(http.MethodPost, "/api/login", strings.NewReader(b), http.Header{"Content-Type": {"application/json"}})
		if r.Status != http.StatusBadRequest {
			t.Fatalf("malformed body %d: want 400, got %s", i, r)
		}
	}
	if h := g.up.hits(); h != 0 {
		t.Fatalf("the app saw %d malformed login submissions, want none", h)
	}
	// three failures from the address: it is blocked
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 29, 30)

	evs := g.events(q("type", "FAILED_LOGIN"))
	if len(evs) != len(bodies) {
		t.Fatalf("want %d FAILED_LOGIN:\n%s", len(bodies), dumpEvents(evs))
	}
	for _, e := range evs {
		if e.IP != "127.0.0.1" {
			t.Fatalf("FAILED_LOGIN without the client address:\n%s", dumpEvents([]event{e}))
		}
	}
	if evs[0].Details["ip_failures"] != float64(3) {
		t.Fatalf("the last malformed attempt should be the address's 3rd failure:\n%s", dumpEvents(evs))
	}
	if evs[1].User != "" || evs[1].Details["user_error"] == nil {
		t.Fatalf("a body without a username should be recorded with user_error and no user:\n%s", dumpEvents(evs[1:2]))
	}
}
