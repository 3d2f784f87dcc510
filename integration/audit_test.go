package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeAuditKeys writes an Ed25519 key pair as the operator would make it
// with openssl: PKCS#8 private, PKIX public.
func writeAuditKeys(t *testing.T, dir string) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	skDER, _ := x509.MarshalPKCS8PrivateKey(sk)
	pkDER, _ := x509.MarshalPKIXPublicKey(pk)
	priv, pub = filepath.Join(dir, "audit.pem"), filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: skDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// TestAuditTrail: a gateway with audit_log writes every event and admin
// action to a hash chain that survives a reload and verifies after a clean
// stop; one changed byte makes `caddy vigil audit verify` fail and name
// the record.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, pub := writeAuditKeys(t, dir)
	path := filepath.Join(dir, "audit.jsonl")
	cfg := gatewayConfig{Global: "store memory\n\t\taudit_log " + path + " {\n\t\t\tsign_key " + priv + "\n\t\t\tcheckpoint 1s\n\t\t\tinstance gw1\n\t\t}"}
	g := startGateway(t, cfg)
	for i := 0; i < 3; i++ {
		wantFailedLogin(t, g.login("alice", "wrong"))
	}
	g.waitEvents(q("type", "ACCOUNT_LOCKED"), "the lock", func(evs []event) bool { return len(evs) == 1 })
	if out, stderr, err := g.vigilCLI("unlock", "alice"); err != nil {
		t.Fatalf("unlock: %v\n%s%s", err, out, stderr)
	}
	g.reload(cfg)
	wantFailedLogin(t, g.login("bob", "wrong"))
	g.waitEvents(q("user", "bob"), "bob's failure", func(evs []event) bool { return len(evs) == 1 })
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not stop")
	}

	live := filepath.Join(dir, "audit.gw1.jsonl")
	raw, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(live); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the audit file is %v, want 0600", fi.Mode().Perm())
	}
	for _, want := range []string{`"ACCOUNT_LOCKED"`, `"ADMIN_ACTION"`, `"FAILED_LOGIN"`, `"checkpoint"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Fatalf("the audit file has no %s record:\n%.2000s", want, raw)
		}
	}
	verify := func() (string, error) {
		cmd := exec.Command(caddyBin, "vigil", "audit", "verify", "--pub", pub, "--chain", path, "--instance", "gw1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "audit OK") {
		t.Fatalf("a clean chain did not verify: %v\n%s", err, out)
	}
	// one byte of alice's lock record changed
	i := bytes.Index(raw, []byte(`"alice"`))
	tampered := append([]byte(nil), raw...)
	tampered[i+1] = 'A'
	if err := os.WriteFile(live, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := verify()
	if err == nil || !strings.Contains(out, "BROKEN") || !strings.Contains(out, "line") {
		t.Fatalf("a changed byte verified: %v\n%s", err, out)
	}
}
