package login

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/detect"
)

func TestFormField(t *testing.T) {
	cases := []struct {
		body, field, want string
		err               bool
	}{
		{"username=alice&password=secret", "username", "alice", false},
		{"password=x&username=bob", "username", "bob", false},
		{"user%6eame=carol&password=x", "username", "carol", false},
		{"username=al%69ce+smith", "username", "alice smith", false},
		{"username=&password=x", "username", "", true},
		{"password=x", "username", "", true},
		{"username=%zz", "username", "", true},
		{"username=%ff%fe", "username", "", true}, // not UTF-8
		{"username=" + strings.Repeat("a", 2000), "username", "", true},
		{"", "username", "", true},
		{"username=decoy&password=x&username=alice", "username", "", true}, // ambiguous
	}
	for _, c := range cases {
		got, err := FormField([]byte(c.body), c.field)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("FormField(%q) = %q, %v; want %q, err=%v", c.body, got, err, c.want, c.err)
		}
	}
}

func TestJSONField(t *testing.T) {
	cases := []struct {
		body, path, want string
		err              bool
	}{
		{`{"username":"alice","password":"x"}`, "username", "alice", false},
		{`{"password":"p\"w","user":{"name":"bob"}}`, "user.name", "bob", false},
		{` { "user" : { "id": [1,2,{"a":null}], "name" : "c\u00e9line" } } `, "user.name", "céline", false},
		{`{"u\u0073er":"esc"}`, "user", "esc", false},
		{`{"id":12345}`, "id", "12345", false},
		{`{"user":{"name":true}}`, "user.name", "", true},
		{`{"user":"alice"}`, "user.name", "", true},
		{`{"user":{"name":"x"`, "user.name", "", true}, // truncated: the rest could name another user
		{`{"password":"x", "user`, "user", "", true},
		{`[1,2]`, "user", "", true},
		{`{"User":{"NAME":"alice"}}`, "user.name", "alice", false},                   // encoding/json matches keys case-insensitively
		{`{"user":{"name":"decoy","name":"alice"}}`, "user.name", "", true},          // duplicate: ambiguous
		{`{"user":{"name":"decoy"},"User":{"name":"alice"}}`, "user.name", "", true}, // case variants: ambiguous
		{`not json`, "user", "", true},
		{strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200), "b", "", true},
	}
	for _, c := range cases {
		got, err := JSONField([]byte(c.body), c.path)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("JSONField(%q, %q) = %q, %v; want %q, err=%v", c.body, c.path, got, err, c.want, c.err)
		}
	}
}

func TestMultipartField(t *testing.T) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("password", "hunter2")
	_ = mw.WriteField("username", "dave")
	_ = mw.Close()
	got, err := MultipartField(buf.Bytes(), mw.FormDataContentType(), "username")
	if err != nil || got != "dave" {
		t.Fatalf("MultipartField = %q, %v; want dave", got, err)
	}
	if _, err := MultipartField(buf.Bytes()[:buf.Len()/2], mw.FormDataContentType(), "username"); err == nil {
		t.Error("truncated multipart body before the field: want an error")
	}
	if _, err := MultipartField(buf.Bytes(), "multipart/form-data", "username"); err == nil {
		t.Error("missing boundary: want an error")
	}
	if _, err := MultipartField(buf.Bytes(), mw.FormDataContentType(), "email"); !errors.Is(err, detect.ErrNoUser) {
		t.Errorf("absent field: got %v, want detect.ErrNoUser", err)
	}
}

func TestDisplay(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := detect.Display(long)
	if len(got) > 260 || !strings.HasSuffix(got, "…") || !json.Valid([]byte(`"`+strings.TrimSuffix(got, "…")+`"`)) {
		t.Errorf("DisplayUser cut badly: %d bytes", len(got))
	}
	if detect.Display("bob") != "bob" {
		t.Error("short names must be kept")
	}
}

// FuzzJSONField checks the skipping scanner against encoding/json: whenever
// the body is valid JSON and encoding/json finds a string at the path, the
// scanner must find the same string, trimmed; and it must never panic.
func FuzzJSONField(f *testing.F) {
	for _, s := range []string{`{"user":{"name":"alice"},"password":"x"}`, `{"user":{"name":1}}`, `{"user":[{"name":"x"}]}`, `{"a\"b":"c","user":{"x":{},"name":"é\n"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := JSONField(body, "user.name")
		if !json.Valid(body) {
			return
		}
		var doc map[string]any
		if json.Unmarshal(body, &doc) != nil {
			return
		}
		u, _ := doc["user"].(map[string]any)
		want, isString := u["name"].(string)
		want = strings.TrimSpace(want) // usernames are compared trimmed, as apps trim them
		if !isString || want == "" || len(want) > detect.MaxUsernameBytes || !bytes.Equal([]byte(want), []byte(strings.ToValidUTF8(want, "\uFFFD"))) {
			return
		}
		if hasDuplicateKeys(body) {
			return // encoding/json takes the last duplicate, the scanner the first
		}
		if err != nil || got != want {
			t.Fatalf("JSONField(%q) = %q, %v; encoding/json says %q", body, got, err, want)
		}
	})
}

// hasDuplicateKeys spots bodies where the scanner rightly refuses what a map
// lookup accepts: repeated or case-variant keys (also spelt with escapes or
// the non-ASCII letters that fold to ASCII ones).
func hasDuplicateKeys(body []byte) bool {
	lower := strings.ToLower(string(body))
	return strings.Count(lower, `"user"`) > 1 || strings.Count(lower, `"name"`) > 1 ||
		bytes.Contains(body, []byte(`\u`)) || strings.ContainsAny(lower, "ſK")
}

// FuzzFormField must never panic and never return a value that is not a
// valid, bounded username.
func FuzzFormField(f *testing.F) {
	for _, s := range []string{"username=alice&password=x", "a=b&username=%41", "username=%", "&&=&username"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := FormField(body, "username")
		if err == nil && (got == "" || len(got) > detect.MaxUsernameBytes) {
			t.Fatalf("FormField(%q) returned invalid username %q", body, got)
		}
	})
}

// FuzzMultipartField must never panic on hostile multipart bodies.
func FuzzMultipartField(f *testing.F) {
	f.Add([]byte("--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--XX--\r\n"))
	f.Add([]byte("--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := MultipartField(body, "multipart/form-data; boundary=XX", "username")
		if err == nil && (got == "" || len(got) > detect.MaxUsernameBytes) {
			t.Fatalf("MultipartField returned invalid username %q", got)
		}
	})
}
