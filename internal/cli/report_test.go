package cli

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// TestReportToFile: a report written to a file is its owner's only, and
// the note of it goes to standard error, not into a pipe.
func TestReportToFile(t *testing.T) {
	a := &fakeAdmin{answers: map[string]answer{"/vigil/report": {200, "<html>report</html>"}}}
	e, out, notes := testEnv(a)
	path := filepath.Join(t.TempDir(), "report.html")
	if err := e.Report(url.Values{"format": {"html"}, "from": {"2026-11-01"}}, path); err != nil {
		t.Fatal(err)
	}
	if got := a.asked[0]; got != "GET /vigil/report?format=html&from=2026-11-01" {
		t.Fatalf("asked %s", got)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || out.Len() != 0 {
		t.Fatalf("report file: %v %v, printed %q", err, fi, out)
	}
	if want := "report written to " + path + " (19 bytes)\n"; notes.String() != want {
		t.Fatalf("note %q, want %q", notes, want)
	}
}
