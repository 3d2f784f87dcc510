package caddymodule

import (
	"encoding/json"
	"go/build"
	"go/version"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestXcaddyManifestMatchesGoMod keeps the xcaddy build manifest honest:
// the Caddy version is the one go.mod builds and tests against, and the
// plugin is this module, whose root is a Go package that registers Vigil's
// modules: xcaddy imports the module path itself, so
// `xcaddy build --with github.com/vigilsec/vigil` needs that package. (The
// build itself runs in integration/xcaddy_test.go.)
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
	modulePath, caddyVersion := goModRequirement(t, "github.com/caddyserver/caddy/v2")
	if manifest.CaddyVersion != caddyVersion {
		t.Errorf("xcaddy.json caddy_version %q, go.mod requires %q", manifest.CaddyVersion, caddyVersion)
	}
	if len(manifest.Plugins) != 1 || manifest.Plugins[0].ModulePath != modulePath {
		t.Errorf("xcaddy.json plugins %+v, want exactly the module %q", manifest.Plugins, modulePath)
	}

	// The plugin path is an importable package that imports this one.
	root, err := build.ImportDir("..", 0)
	if err != nil {
		t.Fatalf("the module root %s is not a Go package, so xcaddy cannot import it: %v", modulePath, err)
	}
	if !slices.Contains(root.Imports, modulePath+"/caddymodule") {
		t.Errorf("the module root package %q does not import %s/caddymodule (imports %q)", root.Name, modulePath, root.Imports)
	}
	if root.Doc == "" {
		t.Errorf("the module root package %q has no doc comment", root.Name)
	}
}

// TestXcaddyGoLineNotNewerThanCaddys: a plugin whose go line is newer than Caddy's
// forces a newer Go on everyone who builds Caddy with it.
func TestXcaddyGoLineNotNewerThanCaddys(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	ours := ""
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			ours = strings.TrimSpace(v)
		}
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.GoVersion}}", "github.com/caddyserver/caddy/v2")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m github.com/caddyserver/caddy/v2: %v", err)
	}
	caddys := strings.TrimSpace(string(out))
	if ours == "" || caddys == "" {
		t.Fatalf("go lines: ours %q, Caddy's %q", ours, caddys)
	}
	if version.Compare("go"+ours, "go"+caddys) > 0 {
		t.Errorf("go.mod says go %s, newer than Caddy's go %s", ours, caddys)
	}
}

// goModRequirement returns go.mod's module path and the version it requires
// of dep.
func goModRequirement(t *testing.T, dep string) (modulePath, depVersion string) {
	t.Helper()
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case len(f) == 2 && f[0] == "module":
			modulePath = f[1]
		case len(f) >= 2 && f[0] == dep:
			depVersion = f[1]
		}
	}
	return modulePath, depVersion
}
