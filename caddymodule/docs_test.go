package caddymodule

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // reverse_proxy and the rest of a real Caddyfile
	"github.com/prometheus/client_golang/prometheus"
)

// docFiles are the README and every document under docs/.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md")
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(b)
	}
	return out
}

var caddyfileBlock = regexp.MustCompile("(?s)```caddyfile\n(.*?)```")

// TestDocumentedCaddyfilesAdapt: every Caddyfile shown in the README and
// the docs (a fenced block marked caddyfile) adapts without error or
// warning, so what operators copy works. Syntax summaries with <…> slots
// are fenced as text.
func TestDocumentedCaddyfilesAdapt(t *testing.T) {
	n := 0
	for f, text := range docFiles(t) {
		for _, m := range caddyfileBlock.FindAllStringSubmatch(text, -1) {
			n++
			_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(m[1]), nil)
			if err != nil || len(warnings) > 0 {
				t.Errorf("%s: a documented Caddyfile does not adapt: %v %v\n%s", f, err, warnings, m[1])
			}
		}
	}
	if n < 3 {
		t.Fatalf("only %d Caddyfile blocks found in the docs", n)
	}
}

var metricName = regexp.MustCompile(`\bvigil_[a-z_]+[a-z]\b`)

// TestDocumentedMetricsExist: every vigil_… metric the docs name is one
// Vigil registers (histograms may be named with _bucket, _count, _sum).
func TestDocumentedMetricsExist(t *testing.T) {
	known := map[string]bool{}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 8)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())[1]
			known[name] = true
		}
	}
	for f, text := range docFiles(t) {
		for _, m := range metricName.FindAllString(text, -1) {
			if m == "vigil_dashboard" {
				continue // a handler directive, not a metric
			}
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
			if !known[m] && !known[base] && !strings.HasSuffix(m, "_test") {
				t.Errorf("%s names %s, which Vigil does not register", f, m)
			}
		}
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocumentLinksResolve: every relative link between the README and
// the docs points to a file that exists and, with a #fragment, to one of
// its headings.
func TestDocumentLinksResolve(t *testing.T) {
	docs := docFiles(t)
	anchors := map[string]map[string]bool{}
	for f, text := range docs {
		anchors[filepath.Clean(f)] = headingAnchors(text)
	}
	for f, text := range docs {
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := filepath.Clean(f)
			if file != "" {
				path = filepath.Clean(filepath.Join(filepath.Dir(f), file))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links to %s, which does not exist", f, target)
					continue
				}
			}
			if frag != "" && anchors[path] != nil && !anchors[path][frag] {
				t.Errorf("%s links to %s: no such heading in %s", f, target, path)
			}
		}
	}
}

// headingAnchors are the GitHub anchors of a Markdown text's headings.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && !strings.ContainsRune("…—–“”’", r):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// TestWalkthroughIsTheExample: the configuration reference walks through
// Caddyfile.example as it is, not an older copy.
func TestWalkthroughIsTheExample(t *testing.T) {
	ex, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```caddyfile\n"+string(ex)+"```") {
		t.Fatal("docs/configuration.md does not show Caddyfile.example as it is")
	}
}
