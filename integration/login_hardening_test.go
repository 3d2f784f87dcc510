package integration

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/encoding/unicode"
)

// hardenedPolicy watches a form login; alice locks after 3 failures.
const hardenedPolicy = `login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 3 within 1m for 1m
		block_ip 100 within 1m for 1m`

func compress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: 5, LGWin: 16})
	case "zstd":
		w, _ = zstd.NewWriter(&buf, zstd.WithWindowSize(1<<16))
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func utf16le(s string) []byte {
	b, _ := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().Bytes([]byte(s))
	return b
}

// TestLockedAccountNotReachableThroughLenientParsers: against an upstream
// that reads logins as leniently as Express, Flask and Django do, no
// spelling of alice's login reaches the app while she is locked: other
// Content-Encodings, character sets, methods, the query string, path
// parameters, padding and Unicode forms of her name.
func TestLockedAccountNotReachableThroughLenientParsers(t *testing.T) {
	t.Parallel()
	up, app := newLenientUpstream(t)
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: hardenedPolicy, Upstream: up})
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for i := 0; i < 3; i++ {
		if r := g.do("POST", "/login", strings.NewReader("username=alice&password=x"), form); r.Status != http.StatusFound {
			t.Fatalf("wrong password: want the app's 302, got %s", r)
		}
	}
	right := []byte("username=alice&password=wonderland")
	jsonRight := `{"username":"alice","password":"wonderland"}`
	type vector struct {
		name, method, path string
		body               []byte
		header             http.Header
	}
	vectors := []vector{
		{"fullwidth name", "POST", "/login", []byte("username=%EF%BD%81%EF%BD%8C%EF%BD%89%EF%BD%83%EF%BD%85&password=wonderland"), form},
		{"upper case", "POST", "/login", []byte("username=ALICE&password=wonderland"), form},
		{"padded past 1 KiB", "POST", "/login", []byte("username=alice" + strings.Repeat("+", 1100) + "&password=wonderland"), form},
		{"PUT", "PUT", "/login", right, form},
		{"PATCH", "PATCH", "/login", right, form},
		{"GET with a query", "GET", "/login?username=alice&password=wonderland", nil, nil},
		{"user in the query, password in the body", "POST", "/login?username=alice", []byte("password=wonderland"), form},
		{"path parameter", "POST", "/login;jsessionid=1", right, form},
		{"JSON with a UTF-8 BOM", "POST", "/login", append([]byte{0xEF, 0xBB, 0xBF}, jsonRight...), http.Header{"Content-Type": {"application/json"}}},
		{"JSON in UTF-16", "POST", "/login", utf16le(jsonRight), http.Header{"Content-Type": {"application/json"}}},
		{"JSON in UTF-16 with a BOM", "POST", "/login", append([]byte{0xFF, 0xFE}, utf16le(jsonRight)...), http.Header{"Content-Type": {"application/json"}}},
	}
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		vectors = append(vectors, vector{enc, "POST", "/login", compress(t, enc, right),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": {enc}}})
	}
	for _, v := range vectors {
		before := app.logins.Load()
		r := g.do(v.method, v.path, bytes.NewReader(v.body), v.header)
		if app.logins.Load() != before {
			t.Errorf("%s: a login for locked alice reached the app (%s); the app saw %v", v.name, r, app.seen[len(app.seen)-1])
			continue
		}
		if r.Status != http.StatusTooManyRequests {
			t.Errorf("%s: want 429 (alice is locked), got %s", v.name, r)
		}
	}

	// what Vigil cannot read is refused, never forwarded
	refused := []vector{
		{"unknown Content-Encoding", "POST", "/login", []byte("x"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": {"compress"}}},
		{"unknown charset", "POST", "/login", right, http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=ebcdic"}}},
		{"query and body disagree", "POST", "/login?username=bob", right, form},
		{"corrupt gzip", "POST", "/login", []byte("\x1f\x8b\x08\x00garbage"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": {"gzip"}}},
	}
	for _, v := range refused {
		before := app.logins.Load()
		r := g.do(v.method, v.path, bytes.NewReader(v.body), v.header)
		if app.logins.Load() != before || (r.Status != http.StatusBadRequest && r.Status != http.StatusUnsupportedMediaType) {
			t.Errorf("%s: want 400 or 415 and nothing at the app, got %s", v.name, r)
		}
	}

	// the login page itself (no account named, no body) is not an attempt
	if r := g.do("GET", "/login", nil, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "login page") {
		t.Fatalf("GET /login: %s", r)
	}
	// bob, never locked, still logs in through a compressed body
	bob := compress(t, "gzip", []byte("username=bob&password=x"))
	if r := g.do("POST", "/login", bytes.NewReader(bob), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": {"gzip"}}); r.Status != http.StatusFound {
		t.Fatalf("bob's gzip login: %s", r)
	}
}

// TestParallelWrongPasswordsStopAtTheLimit: 50 parallel wrong passwords for
// one account with lockout 5: exactly 5 reach the app, on one gateway with
// the memory store and across two gateways sharing Redis.
func TestParallelWrongPasswordsStopAtTheLimit(t *testing.T) {
	t.Parallel()
	policy := strings.Replace(hardenedPolicy, "lockout 3", "lockout 5", 1)
	cases := map[string]func(t *testing.T, up *upstream) []*gateway{
		"memory": func(t *testing.T, up *upstream) []*gateway {
			return []*gateway{startGateway(t, gatewayConfig{Global: "store memory", Policy: policy, Upstream: up})}
		},
		"redis, two gateways": func(t *testing.T, up *upstream) []*gateway {
			s := redisStore(t)
			return []*gateway{
				startNamedGateway(t, "a", gatewayConfig{Global: s.global, Policy: policy, Upstream: up}),
				startNamedGateway(t, "b", gatewayConfig{Global: s.global, Policy: policy, Upstream: up}),
			}
		},
	}
	for name, start := range cases {
		t.Run(name, func(t *testing.T) {
			up, app := newLenientUpstream(t)
			gws := start(t, up)
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func(g *gateway) {
					defer wg.Done()
					r := g.do("POST", "/login", strings.NewReader("username=carol&password=wrong"),
						http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
					if r.Status != http.StatusFound && r.Status != http.StatusTooManyRequests {
						t.Errorf("want 302 or 429, got %s", r)
					}
				}(gws[i%len(gws)])
			}
			wg.Wait()
			if n := app.logins.Load(); n != 5 {
				t.Fatalf("%d wrong passwords reached the app, want exactly 5", n)
			}
			r := gws[0].do("POST", "/login", strings.NewReader("username=carol&password=wonderland"),
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
			if r.Status != http.StatusTooManyRequests {
				t.Fatalf("carol is not locked after the storm: %s", r)
			}
		})
	}
}
