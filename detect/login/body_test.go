package login

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"

	"github.com/vigilsec/vigil/detect"
)

var formRoute = Route{Method: "POST", Path: "/login", User: UserSource{From: "form", Name: "username"}}

func credsOf(t testing.TB, method, target string, body []byte, hdr http.Header) (credentials, []byte) {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	c := readCredentials(r, &formRoute, 64<<10)
	replayed, _ := io.ReadAll(r.Body)
	return c, replayed
}

func enc16(s string, e unicode.Endianness, bom unicode.BOMPolicy) []byte {
	b, _ := unicode.UTF16(e, bom).NewEncoder().Bytes([]byte(s))
	return b
}

// TestReadCredentialsLikeTheApp: the account is read wherever and however
// a lenient app would read it, and the upstream gets the body unchanged.
func TestReadCredentialsLikeTheApp(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("username=alice&password=x"))
	_ = zw.Close()
	json := `{"username":"alice","password":"x"}`
	u32, _ := utf32.UTF32(utf32.LittleEndian, utf32.UseBOM).NewEncoder().Bytes([]byte(json))
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	jsonH := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name, method, target string
		body                 []byte
		hdr                  http.Header
	}{
		{"form", "POST", "/login", []byte("username=alice&password=x"), form},
		{"gzip form", "POST", "/login", gz.Bytes(), http.Header{"Content-Type": form["Content-Type"], "Content-Encoding": {"gzip"}}},
		{"query", "GET", "/login?username=alice&password=x", nil, nil},
		{"query and body agree", "POST", "/login?username=ALICE", []byte("username=alice&password=x"), form},
		{"user in the query only", "PUT", "/login?username=alice", []byte("password=x"), form},
		{"utf-8 BOM JSON", "POST", "/login", append([]byte{0xEF, 0xBB, 0xBF}, json...), jsonH},
		{"utf-16le JSON, no BOM", "POST", "/login", enc16(json, unicode.LittleEndian, unicode.IgnoreBOM), jsonH},
		{"utf-16be JSON with BOM", "POST", "/login", enc16(json, unicode.BigEndian, unicode.UseBOM), jsonH},
		{"utf-32 JSON with BOM", "POST", "/login", u32, jsonH},
		{"utf-16 form by charset", "POST", "/login", enc16("username=alice&password=x", unicode.LittleEndian, unicode.IgnoreBOM),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-16le"}}},
		{"padded past 1 KiB", "POST", "/login", []byte("username=alice" + strings.Repeat("%20", 1100) + "&password=x"), form},
	} {
		c, replayed := credsOf(t, tc.method, tc.target, tc.body, tc.hdr)
		if c.err != nil || !c.attempt || detect.NormalizeUser(c.user) != "alice" {
			t.Errorf("%s: user %q, attempt %v, err %v", tc.name, c.user, c.attempt, c.err)
		}
		if !bytes.Equal(replayed, tc.body) {
			t.Errorf("%s: the upstream would get %d bytes, not the %d sent", tc.name, len(replayed), len(tc.body))
		}
	}
}

// TestUnreadableLogins: what Vigil cannot read the way an app might is an
// error with the answer it deserves; no account named is no error; a page
// view is not an attempt.
func TestUnreadableLogins(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, tc := range []struct {
		name, method, target string
		body                 []byte
		hdr                  http.Header
		status               int
	}{
		{"unknown encoding", "POST", "/login", []byte("x"), http.Header{"Content-Encoding": {"compress"}}, http.StatusUnsupportedMediaType},
		{"corrupt gzip", "POST", "/login", []byte("\x1f\x8b\x08\x00junk"), http.Header{"Content-Encoding": {"gzip"}}, http.StatusBadRequest},
		{"unknown charset", "POST", "/login", []byte("username=alice"), http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=ebcdic"}}, http.StatusUnsupportedMediaType},
		{"query and body disagree", "POST", "/login?username=bob", []byte("username=alice"), form, http.StatusBadRequest},
		{"two usernames", "POST", "/login", []byte("username=a&username=b"), form, http.StatusBadRequest},
		{"malformed JSON", "POST", "/login", []byte(`{"username":"alice",`), http.Header{"Content-Type": {"application/json"}}, http.StatusBadRequest},
		{"username too long", "POST", "/login", []byte("username=" + strings.Repeat("a", 2000)), form, http.StatusBadRequest},
		{"too large", "POST", "/login", bytes.Repeat([]byte("a"), 70<<10), form, http.StatusRequestEntityTooLarge},
	} {
		c, _ := credsOf(t, tc.method, tc.target, tc.body, tc.hdr)
		if got := unreadableStatus(c.err); got != tc.status || !c.attempt {
			t.Errorf("%s: status %d (err %v, attempt %v), want %d", tc.name, got, c.err, c.attempt, tc.status)
		}
	}
	if c, _ := credsOf(t, "POST", "/login", []byte("password=x"), form); !errors.Is(c.err, detect.ErrNoUser) || !c.attempt || unreadableStatus(c.err) != 0 {
		t.Errorf("no account named: %+v", c)
	}
	for _, target := range []string{"/login", "/login?next=/home"} {
		if c, _ := credsOf(t, "GET", target, nil, nil); c.attempt {
			t.Errorf("GET %s (the login page) counted as an attempt: %+v", target, c)
		}
	}
}

// FuzzReadCredentials: whatever the body, headers and query, reading never
// panics, the upstream gets the body byte for byte, and an account is
// named only without an error.
func FuzzReadCredentials(f *testing.F) {
	f.Add([]byte("username=alice&password=x"), "application/x-www-form-urlencoded", "", "")
	f.Add([]byte(`{"username":"alice"}`), "application/json", "", "username=alice")
	f.Add([]byte{0xFF, 0xFE, 'a', 0}, "application/json", "", "")
	f.Add([]byte("\x1f\x8b\x08\x00"), "", "gzip", "")
	f.Fuzz(func(t *testing.T, body []byte, ct, ce, query string) {
		r := httptest.NewRequest("POST", "/login", bytes.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", ct)
		r.Header.Set("Content-Encoding", ce)
		c := readCredentials(r, &formRoute, 4096)
		replayed, _ := io.ReadAll(r.Body)
		if !bytes.Equal(replayed, body) {
			t.Fatalf("the body changed on its way to the upstream")
		}
		if c.user != "" && c.err != nil {
			t.Fatalf("an account (%q) named with an error (%v)", c.user, c.err)
		}
	})
}
