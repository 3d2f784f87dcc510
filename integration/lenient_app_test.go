package integration

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/golang-jwt/jwt/v5"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/cases"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
	"golang.org/x/text/unicode/norm"
)

// lenientApp logs users in the way the most permissive frameworks read a
// login: Express inflates gzip, deflate and br bodies (and zstd here, as
// newer stacks do); Python's json.loads accepts a UTF-8 BOM and UTF-16/32;
// Flask's request.values and Rails params merge the query and the body
// whatever the method; Django folds usernames with NFKC and case folding
// and its forms trim them. One account: alice / wonderland. A success is
// 302 to /dashboard, a failure 302 back to /login, as the demo app answers.
type lenientApp struct {
	logins   atomic.Int64
	servedAs atomic.Int64
	mu       sync.Mutex
	seen     []loginAttempt
}

func newLenientUpstream(t *testing.T) (*upstream, *lenientApp) {
	t.Helper()
	app := &lenientApp{}
	u := &upstream{hitsFn: app.logins.Load}
	u.srv = httptest.NewServer(app)
	t.Cleanup(u.srv.Close)
	return u, app
}

func (a *lenientApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/whoami" {
		a.whoami(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/login") {
		_, _ = io.WriteString(w, "page")
		return
	}
	vals := lenientValues(r)
	user, pass := vals.Get("username"), vals.Get("password")
	if user == "" {
		_, _ = io.WriteString(w, "login page")
		return
	}
	a.logins.Add(1)
	ok := canonical(user) == "alice" && pass == "wonderland"
	a.mu.Lock()
	a.seen = append(a.seen, loginAttempt{user, ok})
	a.mu.Unlock()
	if ok {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
		return
	}
	http.Redirect(w, r, "/login?error=1", http.StatusFound)
}

func canonical(u string) string {
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(strings.TrimSpace(u))))
}

// lenientValues merges the query and the body, the body read through any
// Content-Encoding and character set, as JSON or a form.
func lenientValues(r *http.Request) url.Values {
	vals := url.Values{}
	for k, v := range r.URL.Query() {
		vals[k] = append(vals[k], v...)
	}
	body := inflate(r)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body = toText(body, params["charset"], mt == "application/json")
	if mt == "application/json" {
		var doc map[string]any
		if json.Unmarshal(body, &doc) == nil {
			for k, v := range doc {
				if s, ok := v.(string); ok {
					vals.Set(k, s)
				}
			}
		}
		return vals
	}
	form, _ := url.ParseQuery(string(body))
	for k, v := range form {
		vals[k] = append(v, vals[k]...)
	}
	return vals
}

func inflate(r *http.Request) []byte {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var rd io.Reader
	switch strings.ToLower(r.Header.Get("Content-Encoding")) {
	case "gzip":
		rd, _ = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		if zr, err := zlib.NewReader(bytes.NewReader(raw)); err == nil {
			rd = zr
		} else {
			rd = flate.NewReader(bytes.NewReader(raw))
		}
	case "br":
		rd = brotli.NewReader(bytes.NewReader(raw))
	case "zstd":
		zr, _ := zstd.NewReader(bytes.NewReader(raw))
		rd = zr
	default:
		return raw
	}
	if rd == nil {
		return raw
	}
	out, _ := io.ReadAll(io.LimitReader(rd, 1<<20))
	return out
}

func toText(b []byte, charset string, isJSON bool) []byte {
	dec := func(d interface{ Bytes([]byte) ([]byte, error) }) []byte {
		out, err := d.Bytes(b)
		if err != nil {
			return b
		}
		return out
	}
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(b, []byte{0, 0, 0xFE, 0xFF}):
		return dec(utf32.UTF32(utf32.BigEndian, utf32.UseBOM).NewDecoder())
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return dec(unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewDecoder())
	case strings.EqualFold(charset, "utf-16le"), isJSON && len(b) > 1 && b[1] == 0:
		return dec(unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder())
	}
	return b
}

// whoami answers as the user of the first valid token it finds anywhere a
// lenient app looks (the Authorization header, any cookie, access_token in
// the query or a form body), and counts the requests it served as someone.
func (a *lenientApp) whoami(w http.ResponseWriter, r *http.Request) {
	var cands []string
	if v := r.Header.Get("Authorization"); strings.HasPrefix(v, "Bearer ") {
		cands = append(cands, strings.TrimPrefix(v, "Bearer "))
	}
	for _, c := range r.Cookies() {
		cands = append(cands, c.Value)
	}
	_ = r.ParseForm() // query and urlencoded body, as Flask's request.values
	cands = append(cands, r.Form["access_token"]...)
	for _, tok := range cands {
		claims := jwt.MapClaims{}
		// no exp check, as a careless app might: revoked or expired, the
		// token still names its user here
		if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(jwtSecret), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation()); err == nil {
			if sub, _ := claims["sub"].(string); sub != "" {
				a.servedAs.Add(1)
				_, _ = io.WriteString(w, sub)
				return
			}
		}
	}
	_, _ = io.WriteString(w, "anonymous")
}
