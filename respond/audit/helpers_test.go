package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// testKey returns a fresh Ed25519 key pair.
func testKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// writeKeyFiles writes the pair as openssl would (PKCS#8 and PKIX PEM).
func writeKeyFiles(t *testing.T, dir string, priv ed25519.PrivateKey) (string, string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := filepath.Join(dir, "audit.pem"), filepath.Join(dir, "audit.pub")
	mustWrite(t, privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	mustWrite(t, pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	return privPath, pubPath
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// testOptions are options for a log in dir with a fixed instance, a
// stepping clock and no default logger noise.
func testOptions(dir string, key ed25519.PrivateKey) Options {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var n int64
	return Options{
		Path: filepath.Join(dir, "audit.jsonl"), Instance: "web1", SignKey: key,
		Checkpoint: time.Hour, FlushEvery: 10 * time.Millisecond, Queue: 1024,
		Logger: slog.New(slog.DiscardHandler),
		Now:    func() time.Time { n++; return t0.Add(time.Duration(n) * time.Millisecond) },
	}
}

func mustOpen(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// testEvent is a failed login by user-i from a documentation address.
func testEvent(i int) detect.Event {
	e := detect.NewEvent(detect.FailedLogin, time.Date(2026, 11, 30, 11, 0, i, 0, time.UTC))
	e.User, e.IP, e.Site = fmt.Sprintf("user-%d", i), "203.0.113.7", "shop"
	e.Details = detect.Details{"path": "/login", "i": i}
	return e
}

// writeLog writes n events in one session and returns the live file.
func writeLog(t *testing.T, o Options, n int) string {
	t.Helper()
	l := mustOpen(t, o)
	for i := range n {
		l.Append(testEvent(i))
	}
	mustClose(t, l)
	return l.Status().File
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		if !bytes.HasSuffix(l, []byte("\n")) {
			b = append(b, '\n')
		}
	}
	mustWrite(t, path, b)
}

// mustVerify fails the test unless the files verify without problems.
func mustVerify(t *testing.T, files []string, pub ed25519.PublicKey) Report {
	t.Helper()
	rep, err := Verify(files, pub)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
	return rep
}

// firstProblem verifies and returns the first problem, failing when none.
func firstProblem(t *testing.T, files []string, pub ed25519.PublicKey) Problem {
	t.Helper()
	rep, err := Verify(files, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("verify found no problem in a tampered log")
	}
	return rep.Problems[0]
}

// records parses every line of a file.
func records(t *testing.T, path string) []record {
	t.Helper()
	var out []record
	for _, line := range readLines(t, path) {
		r, err := parseRecord(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatalf("%s: %v", strings.TrimSpace(string(line)), err)
		}
		out = append(out, r)
	}
	return out
}
