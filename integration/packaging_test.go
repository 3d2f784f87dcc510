package integration

import (
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Packaging: the Dockerfile, the systemd unit and the build script. Docker
// is not needed (nor run): the Dockerfile is checked as text. The systemd
// unit is checked by systemd-analyze, which runs without a running systemd.

// needPackagingTool returns the path of a tool, or skips the test loudly
// (fails it under VIGIL_REQUIRE_TOOLS=1, where .ci/run has installed it).
func needPackagingTool(t *testing.T, name, what string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := "NO " + strings.ToUpper(name) + " on PATH: " + what + " did NOT run"
		if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg + " (VIGIL_REQUIRE_TOOLS=1)")
		}
		t.Skip(msg + " (set VIGIL_REQUIRE_TOOLS=1 to make this a failure)")
	}
	return path
}

// goModGoVersion is go.mod's go line, e.g. "1.26.0".
func goModGoVersion(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// ---------------------------------------------------------------------------
// Dockerfile

type dockerInstruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

type dockerStage struct {
	image, name string
	body        []dockerInstruction
}

// parseDockerfile splits a Dockerfile into ARGs before the first FROM and
// stages, joining continuation lines and dropping comments.
func parseDockerfile(t *testing.T, text string) (args map[string]string, stages []dockerStage) {
	t.Helper()
	args = map[string]string{}
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	if cur.Len() != 0 {
		t.Fatalf("Dockerfile ends in a continuation line: %q", cur.String())
	}
	expand := func(s string) string {
		return os.Expand(s, func(name string) string { return args[name] })
	}
	for _, l := range logical {
		cmd, rest, _ := strings.Cut(l, " ")
		in := dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(rest)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(expand(in.args))
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--platform") })
			st := dockerStage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case len(stages) == 0 && in.cmd == "ARG":
			name, def, _ := strings.Cut(in.args, "=")
			args[name] = def
		case len(stages) == 0:
			t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
		default:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return args, stages
}

func (s dockerStage) all(cmd string) []string {
	var out []string
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// TestDockerfile checks the Dockerfile as text (no Docker engine is needed
// or used): a Go build stage matching go.mod's go line that builds with
// scripts/xcaddy-build.sh, the build CI runs; a slim runtime stage that runs
// Caddy as a non-root user, exposes 80 and 443, and has a HEALTHCHECK on the
// admin endpoint's /vigil/health with a tool it installs.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	_, stages := parseDockerfile(t, string(raw))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[len(stages)-1]

	// The build stage: golang:<go.mod's release line>[.patch][-variant],
	// no older than go.mod's go line.
	goLine := goModGoVersion(t)
	m := regexp.MustCompile(`^(?:docker\.io/(?:library/)?)?golang:(\d+\.\d+(?:\.\d+)?)(?:-[a-z0-9.-]+)?$`).FindStringSubmatch(build.image)
	if m == nil {
		t.Errorf("build stage FROM %s: want a golang:<version> image", build.image)
	} else {
		tag, line := "go"+m[1], "go"+goLine
		if version.Lang(tag) != version.Lang(line) || (strings.Count(m[1], ".") == 2 && version.Compare(tag, line) < 0) {
			t.Errorf("build stage FROM %s: want Go %s (go.mod's go line %s)", build.image, version.Lang(line), goLine)
		}
	}
	if build.name == "" {
		t.Errorf("build stage FROM %s has no name (AS build)", build.image)
	}
	if !slices.ContainsFunc(build.all("RUN"), func(r string) bool {
		return regexp.MustCompile(`(^|[\s/])scripts/xcaddy-build\.sh\b`).MatchString(r)
	}) {
		t.Errorf("the build stage does not RUN scripts/xcaddy-build.sh (the build CI runs); RUN lines: %q", build.all("RUN"))
	}

	// The runtime stage.
	if !regexp.MustCompile(`^(debian:[a-z]+-slim|gcr\.io/distroless/[a-z0-9-]+)(:[\w.-]+)?(@sha256:[0-9a-f]+)?$`).MatchString(runtime.image) {
		t.Errorf("runtime stage FROM %s: want a slim image (debian:*-slim or distroless)", runtime.image)
	}
	if !slices.ContainsFunc(runtime.all("COPY"), func(c string) bool { return strings.Contains(c, "--from="+build.name+" ") }) {
		t.Errorf("the runtime stage does not COPY --from=%s the built binary", build.name)
	}
	users := runtime.all("USER")
	if len(users) == 0 {
		t.Error("the runtime stage has no USER: Caddy would run as root")
	} else if u := users[len(users)-1]; regexp.MustCompile(`^(root|0)(:|$)`).MatchString(u) {
		t.Errorf("the runtime stage runs as USER %s, want a non-root user", u)
	}
	exposed := strings.Fields(strings.Join(runtime.all("EXPOSE"), " "))
	for _, port := range []string{"80", "443"} {
		if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
			t.Errorf("the runtime stage does not EXPOSE %s (EXPOSE %v)", port, exposed)
		}
	}
	checks := runtime.all("HEALTHCHECK")
	if len(checks) != 1 {
		t.Fatalf("the runtime stage has %d HEALTHCHECKs, want 1", len(checks))
	}
	hc := checks[0]
	if !regexp.MustCompile(`https?://(localhost|127\.0\.0\.1):2019/vigil/health\b`).MatchString(hc) {
		t.Errorf("HEALTHCHECK %q does not ask the admin endpoint's /vigil/health (localhost:2019)", hc)
	}
	installs := strings.Join(runtime.all("RUN"), "\n")
	switch {
	case strings.Contains(hc, "curl "):
		_, curlArgs, _ := strings.Cut(hc, "curl ")
		if !slices.ContainsFunc(strings.Fields(curlArgs), func(a string) bool {
			return a == "--fail" || regexp.MustCompile(`^-[a-zA-Z]*f[a-zA-Z]*$`).MatchString(a)
		}) {
			t.Errorf("HEALTHCHECK %q: curl without -f treats a 503 as healthy", hc)
		}
		if !regexp.MustCompile(`apt-get install[^\n&;|]*\scurl(\s|$)`).MatchString(installs) {
			t.Errorf("HEALTHCHECK uses curl, which the runtime stage does not install")
		}
	case strings.Contains(hc, "wget "):
		if !regexp.MustCompile(`apt-get install[^\n&;|]*\swget(\s|$)`).MatchString(installs) {
			t.Errorf("HEALTHCHECK uses wget, which the runtime stage does not install")
		}
	default:
		t.Errorf("HEALTHCHECK %q: want curl or wget", hc)
	}
	cmds := append(runtime.all("ENTRYPOINT"), runtime.all("CMD")...)
	if !slices.ContainsFunc(cmds, func(c string) bool { return strings.Contains(c, "caddy") && strings.Contains(c, "run") }) {
		t.Errorf("the runtime stage does not run `caddy run` (ENTRYPOINT/CMD %q)", cmds)
	}

	if hadolint, err := exec.LookPath("hadolint"); err == nil {
		if out, err := exec.Command(hadolint, "../Dockerfile").CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("hadolint Dockerfile: %v\n%s", err, out)
		}
	} else {
		t.Log("hadolint is not installed (Debian has no package): the Dockerfile was checked as text only")
	}
}

// TestDockerignoreKeepsTheBuildInputs: .dockerignore leaves the build
// stage everything scripts/xcaddy-build.sh needs and drops the local clutter.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "!") {
				t.Fatalf(".dockerignore: exceptions (%s) are not supported by this test", line)
			}
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	ignored := func(path string) bool {
		for _, p := range patterns {
			// "**/x" matches x in any directory
			anywhere := strings.HasPrefix(p, "**/")
			p = strings.TrimPrefix(p, "**/")
			// a pattern matches the path or one of its parent directories
			for dir := path; dir != "." && dir != "/"; dir = filepath.Dir(dir) {
				if ok, _ := filepath.Match(p, dir); ok {
					return true
				}
				if ok, _ := filepath.Match(p, filepath.Base(dir)); ok && anywhere {
					return true
				}
			}
		}
		return false
	}
	for _, keep := range []string{"go.mod", "go.sum", "xcaddy.json", "vigil.go", "scripts/xcaddy-build.sh",
		"Caddyfile.example", "caddymodule/app.go", "detect/pipeline.go", "cmd/vigil-demo/Caddyfile"} {
		if ignored(keep) {
			t.Errorf(".dockerignore drops %s, which the image build needs", keep)
		}
	}
	for _, drop := range []string{".git/HEAD", "caddy", "caddymodule/caddymodule.test"} {
		if !ignored(drop) {
			t.Errorf(".dockerignore keeps %s in the build context", drop)
		}
	}
}

// ---------------------------------------------------------------------------
// systemd

// unitDirectives reads a unit file into section → key → values.
func unitDirectives(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	units := map[string]map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			units[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot read %q", path, line)
			}
			units[section][key] = append(units[section][key], value)
		}
	}
	return units
}

const unitBinary = "/usr/local/bin/caddy"

// TestSystemdUnit: packaging/vigil.service passes `systemd-analyze verify`
// with no warning at all (ExecStart pointed at a real binary, the one
// TestMain built, since verify checks that it exists), rates "OK" (exposure
// at most 2.0) in `systemd-analyze security`, and keeps the hardening this
// project promises; packaging/vigil.sysusers creates the vigil user.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze := needPackagingTool(t, "systemd-analyze", "the systemd unit check (apt-get install systemd)")
	unit := "../packaging/vigil.service"

	d := unitDirectives(t, unit)
	svc := d["Service"]
	want := map[string]string{
		"User": "vigil", "Group": "vigil",
		"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true",
		"PrivateTmp": "true", "PrivateDevices": "true",
		"ProtectKernelTunables": "true", "ProtectKernelModules": "true", "ProtectKernelLogs": "true",
		"ProtectControlGroups": "true", "RestrictNamespaces": "true", "LockPersonality": "true",
		"MemoryDenyWriteExecute": "true", "RestrictSUIDSGID": "true",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"SystemCallArchitectures": "native",
	}
	for key, value := range want {
		if got := svc[key]; !slices.Equal(got, []string{value}) {
			t.Errorf("%s: %s=%q, want %s=%s", unit, key, got, key, value)
		}
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("%s: SystemCallFilter=%q, want @system-service", unit, svc["SystemCallFilter"])
	}
	rw := strings.Fields(strings.Join(svc["ReadWritePaths"], " "))
	for _, dir := range []string{"/var/lib/vigil", "/var/log/vigil"} {
		if !slices.Contains(rw, dir) {
			t.Errorf("%s: ReadWritePaths %q lacks %s", unit, rw, dir)
		}
	}
	const config = "--config /etc/vigil/Caddyfile --adapter caddyfile"
	if got := svc["ExecStart"]; len(got) != 1 || got[0] != unitBinary+" run "+config {
		t.Errorf("%s: ExecStart=%q, want %s run %s (and no --environ: it would log the secrets)", unit, got, unitBinary, config)
	}
	if got := svc["ExecReload"]; len(got) != 1 || !strings.HasPrefix(got[0], unitBinary+" reload "+config) {
		t.Errorf("%s: ExecReload=%q, want %s reload %s", unit, got, unitBinary, config)
	}

	raw, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// systemd-analyze itself must be usable here: a minimal unit verifies
	// silently.
	baseline := filepath.Join(dir, "baseline.service")
	if err := os.WriteFile(baseline, []byte("[Service]\nExecStart="+caddyBin+" version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", baseline).CombinedOutput(); err != nil || len(out) != 0 {
		msg := "systemd-analyze cannot verify even a minimal unit here, so the unit was NOT checked: " + string(out)
		if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s (%v; VIGIL_REQUIRE_TOOLS=1)", msg, err)
		}
		t.Skip(msg)
	}

	if strings.Count(string(raw), unitBinary) < 2 {
		t.Fatalf("%s: ExecStart and ExecReload should both run %s", unit, unitBinary)
	}
	copied := filepath.Join(dir, "vigil.service")
	if err := os.WriteFile(copied, []byte(strings.ReplaceAll(string(raw), unitBinary, caddyBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", copied).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify %s (ExecStart → %s): %v\n%s", unit, caddyBin, err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", copied).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security %s: exposure over 2.0 (or the check failed): %v\n%s", unit, err, out)
	} else if m := regexp.MustCompile(`Overall exposure level for vigil\.service: (\S+ \S+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security: %s", m[1])
	}

	sysusers := needPackagingTool(t, "systemd-sysusers", "the sysusers check (apt-get install systemd)")
	conf, err := filepath.Abs("../packaging/vigil.sysusers") // a relative path is read under --root
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(sysusers, "--dry-run", "--root="+t.TempDir(), conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Creating user 'vigil'") {
		t.Errorf("systemd-sysusers --dry-run packaging/vigil.sysusers: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------------------------
// scripts

// TestShellScripts: the build script and .ci/run parse, stop at the first
// error and are shellcheck-clean.
func TestShellScripts(t *testing.T) {
	t.Parallel()
	scripts := []string{"../scripts/xcaddy-build.sh", "../.ci/run"}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		raw, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "\nset -euo pipefail\n") {
			t.Errorf("%s does not `set -euo pipefail`", s)
		}
	}
	shellcheck := needPackagingTool(t, "shellcheck", "the shellcheck of scripts/xcaddy-build.sh and .ci/run (apt-get install shellcheck)")
	if out, err := exec.Command(shellcheck, scripts...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// TestSysctlFile: every setting of packaging/vigil.sysctl is "key = value"
// and names a kernel setting this kernel has, so `sysctl --system` applies
// it rather than warning about an unknown key.
func TestSysctlFile(t *testing.T) {
	b, err := os.ReadFile("../packaging/vigil.sysctl")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" || value == "" {
			t.Fatalf("packaging/vigil.sysctl:%d: %q is not key = value", i+1, line)
		}
		if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(key, ".", "/")); err != nil {
			t.Fatalf("packaging/vigil.sysctl:%d: %s is not a kernel setting here: %v", i+1, key, err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("packaging/vigil.sysctl sets nothing")
	}
}
