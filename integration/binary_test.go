package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryKnowsVigil: the built Caddy lists Vigil's modules and accepts
// the documented example policy as it stands in the repository.
func TestBinaryKnowsVigil(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(caddyBin, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy list-modules: %v\n%s", err, out)
	}
	for _, id := range []string{"vigil", "http.handlers.vigil", "admin.api.vigil"} {
		if !strings.Contains("\n"+string(out), "\n"+id+"\n") {
			t.Errorf("caddy list-modules does not list %s", id)
		}
	}
	out, err = exec.Command(caddyBin, "validate", "--config", "../Caddyfile.example", "--adapter", "caddyfile").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid configuration") {
		t.Fatalf("caddy validate --config Caddyfile.example: %v\n%s", err, out)
	}
	out, err = exec.Command(caddyBin, "vigil", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy vigil --help: %v\n%s", err, out)
	}
	for _, verb := range []string{"decisions", "block", "unblock", "lock", "unlock", "revoke", "unrevoke", "events"} {
		if !strings.Contains(string(out), verb) {
			t.Errorf("caddy vigil --help does not mention %s", verb)
		}
	}
}
