package cli

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestStatus: a store that does not answer (503) is printed and makes the
// command fail; another error status is an error without a report.
func TestStatus(t *testing.T) {
	down := `{"status":"failing_open","message":"down","store":{"type":"redis","reachable":false,"error":"refused"}}`
	a := &fakeAdmin{answers: map[string]answer{"/vigil/health": {http.StatusServiceUnavailable, down}}}
	e, out, _ := testEnv(a)
	if err := e.Status(); !errors.Is(err, ErrStoreDown) || !strings.Contains(out.String(), "no: refused") {
		t.Fatalf("store down: %v\n%s", err, out)
	}
	a.answers["/vigil/health"] = answer{http.StatusInternalServerError, `{"error":"boom"}`}
	out.Reset()
	if err := e.Status(); err == nil || errors.Is(err, ErrStoreDown) || out.Len() != 0 {
		t.Fatalf("500: %v %q", err, out)
	}
}
