package caddymodule

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestXcaddyManifestMatchesGoMod keeps the xcaddy build manifest honest:
// the plugin path is this module and the Caddy version is the one go.mod
// builds and tests against.
func TestXcaddyManifestMatchesGoMod(t *testing.T) {
	raw, err := os.ReadFile("../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		CaddyVersion string `json:"caddy_version"`
		Plugins      []struct {
			ModulePath string `json:"module_path"`
			Version    string `json:"version"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	modulePath, caddyVersion := "", ""
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case len(f) == 2 && f[0] == "module":
			modulePath = f[1]
		case len(f) >= 2 && f[0] == "github.com/caddyserver/caddy/v2":
			caddyVersion = f[1]
		}
	}
	if manifest.CaddyVersion != caddyVersion {
		t.Errorf("xcaddy.json caddy_version %q, go.mod requires %q", manifest.CaddyVersion, caddyVersion)
	}
	if len(manifest.Plugins) != 1 || manifest.Plugins[0].ModulePath != modulePath {
		t.Errorf("xcaddy.json plugins %+v, want exactly the module %q", manifest.Plugins, modulePath)
	}
}
