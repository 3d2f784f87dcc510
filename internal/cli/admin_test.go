package cli

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fakeAdmin answers Fetch from a table of paths (the query left off), and
// records the URIs it was asked for.
type fakeAdmin struct {
	answers map[string]answer
	asked   []string
}

type answer struct {
	status int
	body   string
}

func (f *fakeAdmin) Fetch(method, uri string, _ any) (int, []byte, error) {
	f.asked = append(f.asked, method+" "+uri)
	path, _, _ := strings.Cut(uri, "?")
	a, ok := f.answers[path]
	if !ok {
		return http.StatusNotFound, []byte(`{"error":"no such resource"}`), nil
	}
	return a.status, []byte(a.body), nil
}

func (f *fakeAdmin) Stream(string, string, http.Header, io.Reader) (*http.Response, error) {
	return nil, errors.New("not streamed in these tests")
}

// testEnv is an Env on a as a person at a terminal sees it.
func testEnv(a Admin) (Env, *bytes.Buffer, *bytes.Buffer) {
	var out, notes bytes.Buffer
	return Env{Admin: a, Out: tableOut(&out), Notes: &notes}, &out, &notes
}

func TestAnswerError(t *testing.T) {
	err := answerError("DELETE", "/vigil/blocks/1.2.3.4?x=1", 404, []byte(`{"error":"no active block for 1.2.3.4"}`))
	if err.Error() != "DELETE /vigil/blocks/1.2.3.4: HTTP 404: no active block for 1.2.3.4" {
		t.Fatal(err)
	}
	if err := answerError("GET", "/x", 502, []byte("bad gateway\n")); err.Error() != "GET /x: HTTP 502: bad gateway" {
		t.Fatal(err)
	}
}

// TestCall: an answer is printed by its renderer; one from 400 up is the
// command's error and prints nothing.
func TestCall(t *testing.T) {
	a := &fakeAdmin{answers: map[string]answer{"/vigil/locks/alice": {200, `{"lifted":true,"kind":"lock","target":"alice"}`}}}
	e, out, _ := testEnv(a)
	if err := e.Call(http.MethodDelete, "/vigil/locks/alice", nil, RenderAuto); err != nil || out.String() != "Lifted lock alice.\n" {
		t.Fatalf("lift: %v %q", err, out)
	}
	out.Reset()
	err := e.Call(http.MethodDelete, "/vigil/locks/bob?x=1", nil, RenderAuto)
	if err == nil || err.Error() != "DELETE /vigil/locks/bob: HTTP 404: no such resource" || out.Len() != 0 {
		t.Fatalf("404: %v %q", err, out)
	}
}
