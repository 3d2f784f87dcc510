package audit

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	priv, _ := testKey(t)
	privPath, pubPath := writeKeyFiles(t, dir, priv)
	gotPriv, err := LoadPrivateKey(privPath)
	if err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("private key: %v", err)
	}
	gotPub, err := LoadPublicKey(pubPath)
	if err != nil || !gotPub.Equal(priv.Public()) {
		t.Fatalf("public key: %v", err)
	}
	// each mistake an operator makes gets an error naming the file
	garbage := filepath.Join(dir, "garbage.pem")
	mustWrite(t, garbage, []byte("not a key"))
	for _, c := range []struct {
		name string
		load func(string) error
		path string
		want string
	}{
		{"public as private", func(p string) error { _, err := LoadPrivateKey(p); return err }, pubPath, `"PUBLIC KEY" PEM block`},
		{"private as public", func(p string) error { _, err := LoadPublicKey(p); return err }, privPath, `"PRIVATE KEY" PEM block`},
		{"no PEM", func(p string) error { _, err := LoadPrivateKey(p); return err }, garbage, "no PEM block"},
		{"missing", func(p string) error { _, err := LoadPublicKey(p); return err }, filepath.Join(dir, "nope.pub"), "nope.pub"},
	} {
		err := c.load(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Base(c.path)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestOpenSSLKeys: the commands docs/audit.md gives make keys that load
// and sign checkpoints that verify.
func TestOpenSSLKeys(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "audit.pem"), filepath.Join(dir, "audit.pub")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "ed25519", "-out", privPath},
		{"pkey", "-in", privPath, "-pubout", "-out", pubPath},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	path := writeLog(t, testOptions(dir, priv), 3)
	mustVerify(t, []string{path}, pub)
	// an RSA key is refused by name
	rsa := filepath.Join(dir, "rsa.pem")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024", "-out", rsa).CombinedOutput(); err != nil {
		t.Skipf("openssl rsa: %v %s", err, out)
	}
	if _, err := LoadPrivateKey(rsa); err == nil || !strings.Contains(err.Error(), "want an Ed25519 key") {
		t.Fatalf("rsa key: %v", err)
	}
}
