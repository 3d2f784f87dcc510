package demoapp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

type attempt struct {
	user string
	ok   bool
}

func newTestApp(t *testing.T, opts Options) (*App, *httptest.Server, *[]attempt) {
	t.Helper()
	var mu sync.Mutex
	var seen []attempt
	opts.LoginHook = func(user string, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, attempt{user, ok})
	}
	app := New(opts)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return app, srv, &seen
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHomeAndLoginPage(t *testing.T) {
	_, srv, _ := newTestApp(t, Options{})
	for _, path := range []string{"/", "/login", "/login?error=1"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{`action="/login"`, `name="username"`, `name="password"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: page lacks %s", path, want)
			}
		}
		if got := strings.Contains(body, "Wrong user name"); got != strings.Contains(path, "error") {
			t.Errorf("%s: error message shown = %v", path, got)
		}
	}
}

func TestFormLogin(t *testing.T) {
	app, srv, seen := newTestApp(t, Options{})
	c := noRedirect()
	cases := []struct {
		user, pass, location string
		cookie               bool
	}{
		{"alice", "wonderland", "/dashboard", true},
		{"bob", "builder", "/dashboard", true},
		{"carol", "secret123", "/dashboard", true},
		{"alice", "wrong", "/login?error=1", false},
		{"alice", "wonderlan", "/login?error=1", false},
		{"mallory", "wonderland", "/login?error=1", false},
		{"", "", "/login?error=1", false},
	}
	for _, tc := range cases {
		resp, err := c.PostForm(srv.URL+"/login", url.Values{"username": {tc.user}, "password": {tc.pass}})
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s/%s: %d → %q, want 302 → %q", tc.user, tc.pass, resp.StatusCode, resp.Header.Get("Location"), tc.location)
		}
		var sess *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == SessionCookie {
				sess = ck
			}
		}
		if (sess != nil) != tc.cookie {
			t.Errorf("%s/%s: session cookie = %v, want %v", tc.user, tc.pass, sess, tc.cookie)
		}
		if sess != nil && (len(sess.Value) != 64 || !sess.HttpOnly) {
			t.Errorf("session cookie %+v: want 64 hex chars, HttpOnly", sess)
		}
	}
	if app.Hits() != int64(len(cases)) {
		t.Errorf("Hits = %d, want %d", app.Hits(), len(cases))
	}
	if len(*seen) != len(cases) || (*seen)[0] != (attempt{"alice", true}) || (*seen)[3] != (attempt{"alice", false}) {
		t.Errorf("hook saw %v", *seen)
	}
}

func TestFormLoginMultipart(t *testing.T) {
	_, srv, _ := newTestApp(t, Options{})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("username", "bob")
	mw.WriteField("password", "builder")
	mw.Close()
	resp, err := noRedirect().Post(srv.URL+"/login", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("multipart login: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestFormLoginBadContentType(t *testing.T) {
	app, srv, seen := newTestApp(t, Options{})
	resp, err := noRedirect().Post(srv.URL+"/login", "text/plain", strings.NewReader("username=alice&password=wonderland"))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("status %d, want 415", resp.StatusCode)
	}
	if app.Hits() != 1 || len(*seen) != 0 {
		t.Errorf("Hits = %d, hook calls = %d; want 1, 0", app.Hits(), len(*seen))
	}
}

func postJSON(t *testing.T, url, body string) (*http.Response, APILoginResponse) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw := readBody(t, resp)
	var out APILoginResponse
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("response %q: %v", raw, err)
	}
	return resp, out
}

func TestAPILogin(t *testing.T) {
	app, srv, seen := newTestApp(t, Options{})
	cases := []struct {
		body   string
		status int
	}{
		{`{"user":{"name":"alice"},"password":"wonderland"}`, 200},
		{`{"user":{"name":"carol"},"password":"secret123"}`, 200},
		{`{"user":{"name":"alice"},"password":"nope"}`, 401},
		{`{"user":{"name":"nobody"},"password":"wonderland"}`, 401},
		{`{"user":"alice","password":"wonderland"}`, 400},
		{`{"user":{"name":"alice"}`, 400},
		{`{"user":{"name":"alice"},"password":"wonderland"} {}`, 400},
		{`not json`, 400},
		{``, 400},
	}
	for _, tc := range cases {
		resp, out := postJSON(t, srv.URL+"/api/login", tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.body, resp.StatusCode, tc.status)
		}
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: content type %q", tc.body, resp.Header.Get("Content-Type"))
		}
		if out.OK != (tc.status == 200) || (out.Token != "") != (tc.status == 200) {
			t.Errorf("%s: body %+v", tc.body, out)
		}
	}
	if app.Hits() != int64(len(cases)) {
		t.Errorf("Hits = %d, want %d", app.Hits(), len(cases))
	}
	want := []attempt{{"alice", true}, {"carol", true}, {"alice", false}, {"nobody", false}}
	if len(*seen) != len(want) {
		t.Fatalf("hook saw %v, want %v", *seen, want)
	}
	for i := range want {
		if (*seen)[i] != want[i] {
			t.Errorf("hook[%d] = %v, want %v", i, (*seen)[i], want[i])
		}
	}
}

func TestAPILoginJWT(t *testing.T) {
	secret := []byte("demo-secret")
	_, srv, _ := newTestApp(t, Options{JWTSecret: secret})
	resp, out := postJSON(t, srv.URL+"/api/login", `{"user":{"name":"alice"},"password":"wonderland"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	parts := strings.Split(out.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", out.Token)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != parts[2] {
		t.Fatalf("bad signature")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Sub      string   `json:"sub"`
		Roles    []string `json:"roles"`
		JTI      string   `json:"jti"`
		IAT, EXP int64
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "alice" || claims.JTI == "" || claims.EXP-claims.IAT != 3600 || len(claims.Roles) == 0 || claims.Roles[0] != "admin" {
		t.Errorf("claims %+v", claims)
	}
}

func TestDashboardAndMe(t *testing.T) {
	_, srv, _ := newTestApp(t, Options{})
	for _, user := range []string{"", "bob"} {
		req, _ := http.NewRequest("GET", srv.URL+"/dashboard", nil)
		if user != "" {
			req.Header.Set("X-Vigil-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, "X-Vigil-User: "+user+"\n") {
			t.Errorf("dashboard as %q: %d %q", user, resp.StatusCode, body)
		}

		req, _ = http.NewRequest("GET", srv.URL+"/api/me", nil)
		if user != "" {
			req.Header.Set("X-Vigil-User", user)
		}
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var me Me
		if err := json.Unmarshal([]byte(readBody(t, resp)), &me); err != nil || resp.StatusCode != 200 || me.User != user {
			t.Errorf("/api/me as %q: %d %+v %v", user, resp.StatusCode, me, err)
		}
	}
}

func TestEcho(t *testing.T) {
	_, srv, _ := newTestApp(t, Options{})
	req, _ := http.NewRequest("GET", srv.URL+"/echo?x=1", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Vigil-User", "carol")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e Echo
	if err := json.Unmarshal([]byte(readBody(t, resp)), &e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || e.Method != "GET" || e.Path != "/echo" || e.XForwardedFor != "203.0.113.7" ||
		e.XVigilUser != "carol" || !strings.HasPrefix(e.RemoteAddr, "127.0.0.1:") {
		t.Errorf("echo: %d %+v", resp.StatusCode, e)
	}

	payload := []byte("username=alice&password=p%40ss\x00\xff\r\n{\"json\":true}")
	resp, err = http.Post(srv.URL+"/echo", "application/x-www-form-urlencoded", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got := readBody(t, resp)
	if resp.StatusCode != 200 || got != string(payload) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("POST /echo: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
}

func TestHealthzAndNotFound(t *testing.T) {
	_, srv, _ := newTestApp(t, Options{})
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/nope", "/admin", "/login/x", "/.env", "/dashboard/x"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	// A known path with the wrong method is 405, not a login attempt.
	resp, err = http.Post(srv.URL+"/dashboard", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /dashboard: %d, want 405", resp.StatusCode)
	}
}

func TestLoggerNeverSeesPasswords(t *testing.T) {
	var buf bytes.Buffer
	_, srv, _ := newTestApp(t, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	resp, err := noRedirect().PostForm(srv.URL+"/login", url.Values{"username": {"alice"}, "password": {"hunter2-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	postJSON(t, srv.URL+"/api/login", `{"user":{"name":"bob"},"password":"builder"}`)
	out := buf.String()
	if !strings.Contains(out, "user=alice") || !strings.Contains(out, "user=bob") {
		t.Errorf("log lacks login lines: %q", out)
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "builder") {
		t.Errorf("log leaks a password: %q", out)
	}
}
