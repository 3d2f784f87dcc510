package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The operator's build: `xcaddy build --with github.com/vigilsec/vigil[=path]`
// through scripts/xcaddy-build.sh, which reads xcaddy.json. The rest of this
// package tests ./cmd/caddy (TestMain's build); these tests test the binary
// operators actually get.

const vigilModule = "github.com/vigilsec/vigil"

// xcaddyEnv: set by .ci/run to the binary its explicit scripts/xcaddy-build.sh
// step built from this checkout, so that CI builds it once for both of its
// test passes. Unset, TestXcaddyBuildSlow runs the script itself.
const xcaddyEnv = "VIGIL_XCADDY_CADDY"

// xcaddyRepoRoot is the module root with symlinks resolved.
func xcaddyRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		t.Fatal(err)
	}
	return root
}

// xcaddyManifest reads ../xcaddy.json.
func xcaddyManifest(t *testing.T) (caddyVersion string, plugins map[string]string) {
	t.Helper()
	raw, err := os.ReadFile("../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		CaddyVersion string `json:"caddy_version"`
		Plugins      []struct {
			ModulePath string `json:"module_path"`
			Version    string `json:"version"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	plugins = map[string]string{}
	for _, p := range m.Plugins {
		plugins[p.ModulePath] = p.Version
	}
	return m.CaddyVersion, plugins
}

// xcaddyNeedGo skips the test, loudly, when the go command is missing (it fails
// under VIGIL_REQUIRE_TOOLS=1): the xcaddy build needs it.
func xcaddyNeedGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		msg := "NO GO COMMAND on PATH: the xcaddy build of Caddy with Vigil did NOT run"
		if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg + " (VIGIL_REQUIRE_TOOLS=1)")
		}
		t.Skip(msg + " (set VIGIL_REQUIRE_TOOLS=1 to make this a failure)")
	}
}

// runXcaddyScript runs scripts/xcaddy-build.sh with args, TMPDIR set to tmp.
func runXcaddyScript(ctx context.Context, tmp string, extraEnv []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{"../scripts/xcaddy-build.sh"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"TMPDIR=" + tmp}, extraEnv...)...)
	cmd.WaitDelay = 10 * time.Second
	return cmd.CombinedOutput()
}

// TestXcaddyBuildScriptReadsManifest: the script turns xcaddy.json into the
// xcaddy command line (Vigil from this checkout, the Caddy version of the
// manifest) and the Go environment of a build of a local replacement, with
// either manifest reader. Fast: --dry-run builds nothing.
func TestXcaddyBuildScriptReadsManifest(t *testing.T) {
	t.Parallel()
	xcaddyNeedGo(t)
	root := xcaddyRepoRoot(t)
	caddyVersion, plugins := xcaddyManifest(t)
	readers := []string{"go"}
	if _, err := exec.LookPath("jq"); err == nil {
		readers = append(readers, "jq")
	} else {
		t.Log("jq is not installed: only the Go manifest reader is tested")
	}
	var plans []string
	for _, reader := range readers {
		tmp := t.TempDir()
		out, err := runXcaddyScript(context.Background(), tmp, []string{"VIGIL_MANIFEST_READER=" + reader}, "--dry-run", "/tmp/out/caddy")
		if err != nil {
			t.Fatalf("xcaddy-build.sh --dry-run (reader %s): %v\n%s", reader, err, out)
		}
		plan := string(out)
		for _, want := range []string{
			"xcaddy build " + caddyVersion + " --output /tmp/out/caddy",
			"--with " + vigilModule + "=" + root + "\n",
			"\nGONOSUMDB=",
			"\nCGO_ENABLED=0\n",
		} {
			if !strings.Contains("\n"+plan, want) {
				t.Errorf("reader %s: the plan does not contain %q:\n%s", reader, want, plan)
			}
		}
		if !regexp.MustCompile(`(?m)^GOPROXY=[^,|\n]+\|file://\S+/empty-goproxy$`).MatchString(plan) {
			t.Errorf("reader %s: GOPROXY is not the first proxy chained with an empty file proxy:\n%s", reader, plan)
		}
		if !regexp.MustCompile(`(?m)^GONOSUMDB=(.*,)?` + regexp.QuoteMeta(vigilModule) + `$`).MatchString(plan) {
			t.Errorf("reader %s: GONOSUMDB does not name %s:\n%s", reader, vigilModule, plan)
		}
		for path, version := range plugins {
			if path == vigilModule {
				continue
			}
			want := "--with " + path
			if version != "" && version != "latest" {
				want += "@" + version
			}
			if !strings.Contains(plan, want) {
				t.Errorf("reader %s: the plan does not build plugin %s (%q):\n%s", reader, path, want, plan)
			}
		}
		// the temporary proxy directory differs from run to run
		plans = append(plans, regexp.MustCompile(`file://\S+`).ReplaceAllString(plan, "file://TMP"))
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("reader %s: the script left %d entries in its TMPDIR", reader, len(left))
		}
	}
	if len(plans) == 2 && plans[0] != plans[1] {
		t.Errorf("the Go and jq manifest readers disagree:\n%s\n---\n%s", plans[0], plans[1])
	}
}

// TestXcaddyBuildSlow builds Caddy with Vigil exactly as an operator does,
// `xcaddy build --with github.com/vigilsec/vigil=<this checkout>` through
// scripts/xcaddy-build.sh, and checks what it built. SLOW: it compiles Caddy
// in xcaddy's own module (no cache shared with ./cmd/caddy): minutes on a
// cold Go cache, under a minute warm. `go test -short` skips it; CI builds the
// binary once in .ci/run and passes it in VIGIL_XCADDY_CADDY.
//
// Not parallel: it runs while the package's parallel tests wait, so the
// compile does not starve their timing-sensitive gateways.
func TestXcaddyBuildSlow(t *testing.T) {
	root := xcaddyRepoRoot(t)
	bin := os.Getenv(xcaddyEnv)
	if bin != "" {
		t.Logf("checking %s=%s, built by .ci/run with scripts/xcaddy-build.sh", xcaddyEnv, bin)
	} else {
		if testing.Short() {
			t.Skip("SLOW xcaddy build of Caddy with Vigil skipped under -short: the xcaddy build was NOT tested")
		}
		xcaddyNeedGo(t)
		bin = xcaddyBuild(t, root)
	}
	checkXcaddyBinary(t, bin, root)
}

// xcaddyBuild runs scripts/xcaddy-build.sh into a temporary directory
// and returns the binary's path.
func xcaddyBuild(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "caddy")
	before := xcaddyRepoFiles(t, root)

	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		// leave time for the checks and for the rest of the package to report
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	start := time.Now()
	out, err := runXcaddyScript(ctx, tmp, nil, bin)
	took := time.Since(start).Round(time.Second)
	if err != nil {
		msg := fmt.Sprintf("scripts/xcaddy-build.sh failed after %s: %v\n%s", took, err, xcaddyTail(out, 60))
		if ctx.Err() != nil {
			t.Fatalf("%s\n(the build ran out of the test's time: run with a longer -timeout, or -short to skip it)", msg)
		}
		if os.Getenv("VIGIL_REQUIRE_TOOLS") != "1" && xcaddyNoProxy(out) {
			t.Skip("NO MODULE PROXY: the xcaddy build of Caddy with Vigil could not download modules and did NOT run (set VIGIL_REQUIRE_TOOLS=1 to make this a failure)\n" + msg)
		}
		t.Fatal(msg)
	}
	t.Logf("xcaddy build took %s:\n%s", took, xcaddyLines(out, "xcaddy-build:"))

	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the script left %d entries in its TMPDIR (xcaddy's build folder, the empty proxy)", len(left))
	}
	if after := xcaddyRepoFiles(t, root); !slices.Equal(before, after) {
		t.Errorf("the build changed the files in the repository's root or scripts/:\nbefore %v\nafter  %v", before, after)
	}
	return bin
}

// checkXcaddyBinary: bin is xcaddy's build of this checkout at the manifest's
// Caddy version, lists Vigil's modules, knows `caddy vigil` and accepts the
// documented example policy.
func checkXcaddyBinary(t *testing.T, bin, root string) {
	t.Helper()
	caddyVersion, _ := xcaddyManifest(t)
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(),
			"HOME="+home,
			"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
			"XDG_DATA_HOME="+filepath.Join(home, "data"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	modules := strings.Split(run("list-modules"), "\n")
	for _, id := range []string{"vigil", "http.handlers.vigil", "admin.api.vigil"} {
		if !slices.Contains(modules, id) {
			t.Errorf("caddy list-modules does not list %s", id)
		}
	}

	if v := run("version"); !strings.HasPrefix(v, caddyVersion+" ") {
		t.Errorf("caddy version = %q, want Caddy %s (xcaddy.json)", strings.TrimSpace(v), caddyVersion)
	}

	// xcaddy's main module is "caddy", with Vigil replaced by this checkout:
	// this is the operator's build, not ./cmd/caddy.
	info := run("build-info")
	if !regexp.MustCompile(`(?m)^path\tcaddy$`).MatchString(info) {
		head, _, _ := strings.Cut(info, "\ndep\t")
		t.Errorf("caddy build-info: the main package is not xcaddy's \"caddy\":\n%s", head)
	}
	replaced := regexp.MustCompile(`(?m)^dep\t` + regexp.QuoteMeta(vigilModule) + `\t\S+\n=>\t(\S+)`).FindStringSubmatch(info)
	if replaced == nil {
		t.Errorf("caddy build-info does not show %s replaced by a local checkout:\n%s", vigilModule, xcaddyLines([]byte(info), "vigil"))
	} else if dir, err := filepath.EvalSymlinks(replaced[1]); err != nil || dir != root {
		t.Errorf("caddy build-info: %s => %s, want this checkout %s", vigilModule, replaced[1], root)
	}

	if out := run("validate", "--config", "../Caddyfile.example", "--adapter", "caddyfile"); !strings.Contains(out, "Valid configuration") {
		t.Errorf("caddy validate --config Caddyfile.example:\n%s", out)
	}
	if out := run("vigil", "--help"); !strings.Contains(out, "block") {
		t.Errorf("caddy vigil --help does not describe the subcommands:\n%s", out)
	}
}

// xcaddyRepoFiles lists the repository's root and scripts/ (where a build could
// leave something behind), except the binaries .gitignore names.
func xcaddyRepoFiles(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	for _, dir := range []string{"", "scripts"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := filepath.Join(dir, e.Name())
			if strings.HasSuffix(name, ".test") || strings.HasSuffix(name, ".prof") {
				continue // other packages' test runs
			}
			names = append(names, name)
		}
	}
	return names
}

// xcaddyNoProxy: the build failed because no module proxy could be reached.
func xcaddyNoProxy(out []byte) bool {
	s := string(out)
	for _, sign := range []string{"dial tcp", "no such host", "i/o timeout", "TLS handshake timeout", "network is unreachable"} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// tail returns the last n lines of out.
func xcaddyTail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// xcaddyLines returns the lines of out that contain one of the words.
func xcaddyLines(out []byte, words ...string) string {
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				b.WriteString(line + "\n")
				break
			}
		}
	}
	return b.String()
}
