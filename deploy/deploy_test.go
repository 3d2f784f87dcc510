// Package deploy checks the monitoring files shipped in deploy/: the
// Grafana dashboard and the Prometheus alerting rules use only metrics that
// Vigil exports (docs/metrics.md), the rules load in promtool, and the
// main alerts fire on the series they are about.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const (
	dashboardFile = "grafana/vigil-dashboard.json"
	rulesFile     = "prometheus/vigil-rules.yml"
	metricsDoc    = "../docs/metrics.md"
)

// promtool finds promtool, or skips loudly (fails under VIGIL_REQUIRE_TOOLS=1).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool not found and VIGIL_REQUIRE_TOOLS=1")
		}
		t.Skip("SKIPPED: promtool not found in PATH: the alerting rules are not checked (install prometheus, or set VIGIL_REQUIRE_TOOLS=1 to make this fail)")
	}
	return p
}

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestRulesFire runs promtool's rule unit tests on a copy of the rules
// without annotations (their text is for people and may change): each alert
// fires on the series it watches and stays quiet on calm ones.
func TestRulesFire(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(stripAnnotations(string(rules))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests.yml"), []byte(ruleTests), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "test", "rules", "tests.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

const ruleTests = `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'vigil_events_total{job="caddy",type="ACCOUNT_LOCKED",severity="MEDIUM"}'
        values: '0+5x30'
      - series: 'vigil_intrusions_total{job="caddy",kind="scan"}'
        values: '0+20x30'
      - series: 'vigil_store_errors_total{job="caddy",op="incr"}'
        values: '0+10x30'
      - series: 'vigil_alerts_failed_total{job="caddy",channel="slack"}'
        values: '0+1x30'
      - series: 'vigil_alerts_sent_total{job="caddy",channel="slack"}'
        values: '5x30'
      - series: 'vigil_alerts_failed_total{job="caddy",channel="webhook"}'
        values: '0+1x30'
      - series: 'vigil_alerts_sent_total{job="caddy",channel="webhook"}'
        values: '0+1x30'
      - series: 'vigil_events_dropped_total{job="caddy",sink="store"}'
        values: '0 0 0 0 0 0 0 0 0 0 7x20'
      - series: 'vigil_state_evictions_total{job="caddy",state="counters"}'
        values: '0+6000x30'
      - series: 'vigil_alert_queue_depth{job="caddy",channel="email"}'
        values: '5000x30'
    alert_rule_test:
      - eval_time: 15m
        alertname: VigilLockoutStorm
        exp_alerts: [{exp_labels: {job: caddy, severity: critical}}]
      - eval_time: 15m
        alertname: VigilIntrusionBurst
        exp_alerts: [{exp_labels: {job: caddy, severity: warning}}]
      - eval_time: 15m
        alertname: VigilHoneypotHit
        exp_alerts: []
      - eval_time: 15m
        alertname: VigilStoreErrors
        exp_alerts: [{exp_labels: {job: caddy, severity: critical}}]
      - eval_time: 25m
        alertname: VigilAlertDeliveryFailing
        exp_alerts: [{exp_labels: {job: caddy, channel: slack, severity: critical}}]
      - eval_time: 15m
        alertname: VigilEventsDropped
        exp_alerts: [{exp_labels: {job: caddy, sink: store, severity: warning}}]
      - eval_time: 25m
        alertname: VigilStateEvictions
        exp_alerts: [{exp_labels: {job: caddy, state: counters, severity: warning}}]
      - eval_time: 25m
        alertname: VigilAlertQueueBacklog
        exp_alerts: [{exp_labels: {job: caddy, channel: email, severity: warning}}]
  - interval: 1m
    input_series:
      - series: 'vigil_events_total{job="caddy",type="ACCOUNT_LOCKED",severity="MEDIUM"}'
        values: '0+1x30'
      - series: 'vigil_store_errors_total{job="caddy",op="incr"}'
        values: '3x30'
      - series: 'vigil_events_dropped_total{job="caddy",sink="store"}'
        values: '2x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: VigilLockoutStorm
        exp_alerts: []
      - eval_time: 25m
        alertname: VigilStoreErrors
        exp_alerts: []
      - eval_time: 25m
        alertname: VigilEventsDropped
        exp_alerts: []
`

// stripAnnotations removes every "annotations:" block from the YAML.
func stripAnnotations(y string) string {
	var out []string
	skip := -1
	for _, line := range strings.Split(y, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if skip >= 0 {
			if strings.TrimSpace(line) == "" || indent > skip {
				continue
			}
			skip = -1
		}
		if strings.TrimSpace(line) == "annotations:" {
			skip = indent
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// documented reads the metric names from docs/metrics.md's table.
func documented(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:]*)` \\|").FindAllStringSubmatch(string(b), -1) {
		names[m[1]] = true
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metrics in %s", len(names), metricsDoc)
	}
	return names
}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\[\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression reads, with
// histogram suffixes stripped.
func metricNames(expr string) []string {
	expr = reString.ReplaceAllString(expr, `""`)
	expr = reMatchers.ReplaceAllString(expr, " ")
	expr = reRange.ReplaceAllString(expr, " ")
	expr = reGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range reIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(expr[loc[0]-1])) {
			continue // part of a number, a duration or a variable
		}
		if keywords[name] || strings.HasPrefix(strings.TrimLeft(expr[loc[1]:], " \t\n"), "(") {
			continue // an operator or a function call
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			name = strings.TrimSuffix(name, suf)
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNameParser(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (job, le) (rate(vigil_handler_duration_seconds_bucket{job=~"$job",x="a{b}"}[$__rate_interval])))
		> 10 * sum without (op) (rate(vigil_store_errors_total[1d] offset 1d)) and on (job) up unless vigil_a_count > bool 3`)
	want := []string{"vigil_handler_duration_seconds", "vigil_store_errors_total", "up", "vigil_a"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Inputs        []struct {
		Name, Type, PluginID string
	} `json:"__inputs"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource json.RawMessage `json:"datasource"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type, UID string
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) (dashboard, []panel) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, all
}

func TestDashboard(t *testing.T) {
	d, panels := loadDashboard(t)
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d < 39", d.SchemaVersion)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one DS_PROMETHEUS prometheus input", d.Inputs)
	}
	docs := documented(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeats", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource is not ${DS_PROMETHEUS}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, docs, used)
		}
	}
	for _, v := range d.Templating.List {
		m := regexp.MustCompile(`^label_values\(([a-z_:][a-z0-9_:]*),\s*\w+\)$`).FindStringSubmatch(v.Definition)
		if m == nil || !docs[m[1]] {
			t.Errorf("variable %s: query %q is not label_values of a Vigil metric", v.Name, v.Definition)
		}
	}
	for _, want := range []string{"vigil_login_attempts_total", "vigil_enforced_requests_total", "vigil_events_total",
		"vigil_active_decisions", "vigil_alerts_sent_total", "vigil_alerts_failed_total", "vigil_alerts_dropped_total",
		"vigil_alert_queue_depth", "vigil_store_errors_total", "vigil_handler_duration_seconds",
		"vigil_state_evictions_total", "vigil_geoip_reloads_total"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

func checkExpr(t *testing.T, where, expr string, docs, used map[string]bool) {
	t.Helper()
	names := metricNames(expr)
	if len(names) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, n := range names {
		if !docs[n] {
			t.Errorf("%s: metric %s is not in docs/metrics.md (expr %q)", where, n, expr)
		}
		used[n] = true
	}
}

// ruleExprs reads each rule's name and expr from the YAML (plain or block
// scalars), without a YAML library.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	lines := strings.Split(string(b), "\n")
	alert := ""
	for i := 0; i < len(lines); i++ {
		s := strings.TrimSpace(lines[i])
		if a, ok := strings.CutPrefix(s, "- alert:"); ok {
			alert = strings.TrimSpace(a)
		}
		v, ok := strings.CutPrefix(s, "expr:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "|" || v == ">" || v == "|-" || v == ">-" {
			indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
			var body []string
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
				i++
				body = append(body, lines[i])
			}
			v = strings.Join(body, "\n")
		}
		exprs[alert] = v
	}
	return exprs
}

func TestRulesUseDocumentedMetrics(t *testing.T) {
	docs := documented(t)
	used := map[string]bool{}
	exprs := ruleExprs(t)
	var alerts []string
	for a, e := range exprs {
		alerts = append(alerts, a)
		checkExpr(t, "rule "+a, e, docs, used)
	}
	sort.Strings(alerts)
	for _, want := range []string{"VigilLockoutStorm", "VigilIntrusionBurst", "VigilAlertDeliveryFailing",
		"VigilStoreErrors", "VigilEventsDropped", "VigilStateEvictions"} {
		if exprs[want] == "" {
			t.Errorf("no rule %s (have %v)", want, alerts)
		}
	}
}
