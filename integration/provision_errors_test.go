package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/internal/geotest"
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

// TestBadGeoIPFilesRefusedAtStart: a missing, truncated or wrong-type
// GeoIP database is a start-up error that names the file; location
// without geoip is refused too.
func TestBadGeoIPFilesRefusedAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	city, asn := geotest.Files(t)
	raw, err := os.ReadFile(city)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mmdb")
	if err := os.WriteFile(truncated, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mmdb")
	cases := []struct {
		name, global, site string
		want               []string
	}{
		{"missing", "geoip " + missing, "", []string{missing}},
		{"truncated", "geoip " + truncated, "", []string{truncated}},
		{"asn as city", "geoip " + asn, "", []string{asn, "ASN"}},
		{"location without geoip", "", "location", []string{"location", "geoip"}},
	}
	for _, tc := range cases {
		file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".Caddyfile")
		cfg := "{\n\tadmin off\n\tvigil {\n\t\t" + tc.global + "\n\t}\n}\n\n:0 {\n\tvigil {\n\t\tlogin POST /login {\n\t\t\tuser form:username\n\t\t}\n\t\t" + tc.site + "\n\t}\n\trespond ok\n}\n"
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(caddyBin, "validate", "--config", file, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s: validate accepted it:\n%s", tc.name, out)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: the error does not say %q:\n%s", tc.name, want, out)
			}
		}
	}
}
