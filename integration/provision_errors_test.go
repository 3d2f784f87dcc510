package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProvisionErrorsNameTheirSource: a configuration that adapts but
// cannot be provisioned says which vigil block (file and line), which
// directive and which unset variable.
func TestProvisionErrorsNameTheirSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	cfg := `{
	admin off
}

:0 {
	vigil {
		site shop
		session jwt {
			key hs256 {env.VIGIL_TEST_NEVER_SET}
		}
	}
	respond ok
}
`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBin, "validate", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted an unset secret:\n%s", out)
	}
	for _, want := range []string{"site shop", file + ":6", "session jwt key hs256", "{env.VIGIL_TEST_NEVER_SET} is empty or unset"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
}
