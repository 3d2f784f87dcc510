package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func fixture(t *testing.T) *Report {
	t.Helper()
	r, err := Build(context.Background(), fixtureInput(seedLog(t, false)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkHTML parses the page and refuses any resource or link that leaves it.
func checkHTML(t *testing.T, page string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	ids := map[string]bool{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("HTML does not parse: %v", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch strings.ToLower(el.Name.Local) {
		case "script", "link", "img", "iframe", "object", "embed", "base", "form":
			t.Errorf("page has a <%s> element", el.Name.Local)
		}
		for _, a := range el.Attr {
			name := strings.ToLower(a.Name.Local)
			switch {
			case name == "id":
				ids[a.Value] = true
			case name == "src" || name == "srcset" || name == "action" || name == "style":
				t.Errorf("attribute %s=%q", name, a.Value)
			case name == "href" && !strings.HasPrefix(a.Value, "#"):
				t.Errorf("link out of the page: href=%q", a.Value)
			case strings.HasPrefix(name, "on"):
				t.Errorf("event handler %s", name)
			}
		}
	}
	for id := range SectionTitles {
		if !ids[id] {
			t.Errorf("section %q missing", id)
		}
	}
	css := page[strings.Index(page, "<style>"):strings.Index(page, "</style>")]
	if regexp.MustCompile(`(?i)url\(|@import|https?:`).MatchString(css) {
		t.Error("the CSS loads something")
	}
	if !strings.Contains(css, "@media print") || !strings.Contains(css, "break-before:page") {
		t.Error("no print rules")
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//`).MatchString(page) {
		t.Error("an external URL in an attribute")
	}
}

func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := fixture(t).HTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	checkHTML(t, page)
	if strings.Contains(page, `=hyperlink("https`) || !strings.Contains(page, "=hyperlink(&#34;https://evil.example/x&#34;)") {
		t.Error("the hostile username is not escaped as text")
	}
	for _, want := range []string{"2026-11-02", ">2500<", "ACCOUNT_LOCKED", "PCI DSS 4.0", "10.2.1.4", "8.3.4", "CC7.4", "A.8.16", "198.51.100.0/24", `href="#failed-auth"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestHostileTextStaysText(t *testing.T) {
	log := respond.NewMemoryEvents(10)
	e := detect.NewEvent(detect.FailedLogin, t0.Add(time.Hour))
	e.User, e.IP, e.Site = `"><script src="https://x.example/a.js"></script>`, "192.0.2.3", `<img src=//x.example/p>`
	log.Append(e)
	r, err := Build(context.Background(), Input{Events: log, From: t0, To: tEnd})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.HTML(&b); err != nil {
		t.Fatal(err)
	}
	checkHTML(t, b.String())
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	r := fixture(t)
	r.Actions.Rows[0].Reason = "+cmd|' /C calc'!A0"
	r.Actions.Rows[1].Reason = "-2+3"
	r.Actions.Rows[2].Reason = "@SUM(1)"
	r.Actions.Rows[3].Reason = "\t=1"
	if err := r.CSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "header", rows[0], CSVHeader)
	got := map[string]string{}
	for _, row := range rows[1:] {
		if c := row[3]; c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			t.Errorf("unsafe cell %q in %v", c, row)
		}
		for _, c := range row[:3] {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("unsafe cell %q in %v", c, row)
			}
		}
		got[row[0]+"|"+row[1]+"|"+row[2]] = row[3]
	}
	for k, want := range map[string]string{
		"summary|all|events":                                 "2518",
		"failed_auth|total|":                                 "",
		"failed_auth||total":                                 "2505",
		"failed_auth_hourly|2026-11-02T05:00Z|failures":      "2500",
		"data_access_daily|2026-11-02|SENSITIVE_DATA_ACCESS": "1",
		"offenders_network|198.51.100.0/24|events":           "2501",
		"actions|ev00005|action":                             "lock",
		"actions|ev00005|reason":                             "'+cmd|' /C calc'!A0",
		"actions|ev00008|reason":                             "'-2+3",
		"actions|ev00010|reason":                             "'@SUM(1)",
		"actions|ev00012|reason":                             "'\t=1",
		"offenders_user|'" + userKey(evil) + "|events":       "1",
		"alerts|slack|delivered_percent":                     "83.3",
		"audit||status":                                      "verified",
		"controls|PCI DSS 4.0 8.3.4|status":                  "attention",
	} {
		if got[k] != want {
			t.Errorf("CSV %s = %q, want %q", k, got[k], want)
		}
	}
	for _, c := range []struct{ in, want string }{{"=1+1", "'=1+1"}, {"plain", "plain"}, {"", ""}, {"-", "'-"}, {"a=b", "a=b"}, {"\rx", "'\rx"}} {
		eq(t, "SafeCell("+c.in+")", SafeCell(c.in), c.want)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	r := fixture(t)
	if err := r.JSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	eq(t, "failed", back.FailedAuth.Total, 2505)
	eq(t, "offenders", back.Offenders.Networks[0].MaxSeverity, detect.High)
	eq(t, "controls", len(back.Controls), len(r.Controls))
}

func TestEmptyPeriod(t *testing.T) {
	r, err := Build(context.Background(), Input{Events: respond.NewMemoryEvents(10), From: t0, To: t0.Add(36 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "events", r.Summary.Events, 0)
	eq(t, "days", len(r.FailedAuth.Daily), 2)
	eq(t, "pages", r.Coverage.Pages, 1)
	eq(t, "audit", r.Audit.Status, AuditNotVerified)
	eq(t, "title", r.Title, DefaultTitle)
	if r.Generated.IsZero() {
		t.Error("no generation time")
	}
	for _, c := range r.Controls {
		if c.ID == "10.2.1" && c.Status != StatusAttention {
			t.Errorf("10.2.1 with no event: %s", c.Status)
		}
	}
	var h, c, j bytes.Buffer
	if err := r.HTML(&h); err != nil {
		t.Fatal(err)
	}
	checkHTML(t, h.String())
	if !strings.Contains(h.String(), "No event in the period") {
		t.Error("empty page does not say so")
	}
	if err := r.CSV(&c); err != nil {
		t.Fatal(err)
	}
	if _, err := csv.NewReader(&c).ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := r.JSON(&j); err != nil || !json.Valid(j.Bytes()) {
		t.Fatal("bad JSON", err)
	}
}

func TestBounds(t *testing.T) {
	log := seedLog(t, false)
	in := fixtureInput(log)
	in.MaxEvents = 1500
	r, err := Build(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "truncated", [2]any{r.Coverage.Truncated, r.Coverage.Events}, [2]any{true, 1500})
	eq(t, "counted", r.Summary.Events, 1500)
	for _, bad := range []Input{
		{From: t0, To: tEnd},
		{Events: log, From: tEnd, To: t0},
		{Events: log, To: tEnd},
		{Events: log, From: t0, To: t0.Add(MaxPeriod + time.Hour)},
	} {
		if _, err := Build(context.Background(), bad); err == nil {
			t.Errorf("Build(%v → %v) accepted", bad.From, bad.To)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, fixtureInput(log)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := Build(context.Background(), Input{Events: stuck{}, From: t0, To: tEnd}); err == nil || !strings.Contains(err.Error(), "same cursor") {
		t.Errorf("stuck cursor: %v", err)
	}
	if _, err := Build(context.Background(), Input{Events: failing{}, From: t0, To: tEnd}); err == nil {
		t.Error("a failing source gave a report")
	}
}

type stuck struct{}

func (stuck) Query(context.Context, respond.EventFilter) (respond.EventPage, error) {
	return respond.EventPage{Next: "7"}, nil
}

type failing struct{}

func (failing) Query(context.Context, respond.EventFilter) (respond.EventPage, error) {
	return respond.EventPage{}, errors.New("redis: connection refused")
}
