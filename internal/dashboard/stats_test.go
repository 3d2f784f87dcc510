package dashboard

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func at(t detect.Type, when time.Time, ip, user string) detect.Event {
	e := detect.NewEvent(t, when)
	e.IP, e.User = ip, user
	return e
}

func TestStatsBucketing(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	q := StatsQuery{From: from, To: from.Add(10 * time.Minute), Step: 5 * time.Minute}
	if err := q.Normalize(); err != nil {
		t.Fatal(err)
	}
	log := respond.NewMemoryEvents(100)
	add := func(e detect.Event) { log.Append(e) }
	add(at(detect.FailedLogin, from, "192.0.2.1", "alice"))                                   // bucket 0, first instant
	add(at(detect.FailedLogin, from.Add(4*time.Minute+59*time.Second), "192.0.2.1", "alice")) // bucket 0
	add(at(detect.FailedLogin, from.Add(5*time.Minute), "192.0.2.9", "bob"))                  // bucket 1, its first instant
	add(at(detect.SuccessfulLogin, from.Add(6*time.Minute), "198.51.100.1", "carol"))
	add(at(detect.AdminAction, from.Add(6*time.Minute), "", "ops"))
	bulk := at(detect.BulkExport, from.Add(7*time.Minute), "192.0.2.1", "alice")
	bulk.Details = detect.Details{"answer_bytes": float64(5000)}
	add(bulk)
	sens := at(detect.SensitiveDataAccess, from.Add(8*time.Minute), "192.0.2.1", "alice")
	sens.Details = detect.Details{"bytes": int64(100)}
	add(sens)
	add(at(detect.FailedLogin, from.Add(-time.Second), "192.0.2.1", "early"))  // before the window
	add(at(detect.FailedLogin, from.Add(10*time.Minute), "192.0.2.1", "late")) // at its end: excluded

	s, err := Stats(context.Background(), log, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Times) != 2 || s.Times[0] != from.Unix() || s.Times[1] != from.Add(5*time.Minute).Unix() {
		t.Fatalf("times %v", s.Times)
	}
	if got := s.FailedLogins; got[0] != 2 || got[1] != 1 {
		t.Fatalf("failed logins %v, want [2 1]", got)
	}
	if got := s.FailedRate; got[0] != 0.4 || got[1] != 0.2 {
		t.Fatalf("failed per minute %v, want [0.4 0.2]", got)
	}
	if got := s.SuccessfulLogins; got[0] != 0 || got[1] != 1 {
		t.Fatalf("successful %v", got)
	}
	if got := s.DataBytes; got[0] != 0 || got[1] != 5100 {
		t.Fatalf("data bytes %v, want [0 5100]", got)
	}
	// incidents: the bulk export (HIGH) and the sensitive access (LOW); not logins, not admin actions
	if s.Totals["incidents"] != 2 || s.BySeverity["HIGH"][1] != 1 || s.BySeverity["LOW"][1] != 1 || s.BySeverity["LOW"][0] != 0 {
		t.Fatalf("incidents %d, by severity %v", s.Totals["incidents"], s.BySeverity)
	}
	if s.ByType[detect.AdminAction][1] != 1 || s.Totals["FAILED_LOGIN"] != 3 {
		t.Fatalf("by type %v totals %v", s.ByType, s.Totals)
	}
	if len(s.Top.IPs) == 0 || s.Top.IPs[0] != (Count{"192.0.2.1", 4}) || s.Top.Networks[0] != (Count{"192.0.2.0/24", 5}) {
		t.Fatalf("top %+v", s.Top)
	}
	if s.Scanned != 7 || s.Truncated {
		t.Fatalf("scanned %d truncated %v", s.Scanned, s.Truncated)
	}
}

func TestParseStatsQueryBounds(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q, err := ParseStatsQuery(url.Values{}, now)
	if err != nil || q.Step != time.Minute || !q.To.Equal(now) || !q.From.Equal(now.Add(-time.Hour)) {
		t.Fatalf("default: %+v %v, want the last hour by minute", q, err)
	}
	q, err = ParseStatsQuery(url.Values{"from": {"24h"}}, now)
	if err != nil || q.Step != 30*time.Minute {
		t.Fatalf("a day: step %v %v, want 30m", q.Step, err)
	}
	if _, err := ParseStatsQuery(url.Values{"from": {"48h"}, "step": {"1m"}}, now); err == nil {
		t.Fatal("2880 buckets accepted")
	}
	if _, err := ParseStatsQuery(url.Values{"from": {"2026-03-01T13:00:00Z"}}, now); err == nil {
		t.Fatal("from after to accepted")
	}
	if _, err := ParseStatsQuery(url.Values{"step": {"-1s"}}, now); err == nil {
		t.Fatal("negative step accepted")
	}
}

func TestCSVExportIsFormulaSafe(t *testing.T) {
	log := respond.NewMemoryEvents(100)
	for i, u := range []string{"=HYPERLINK(\"http://evil\")", "+1", "-2", "@SUM(A1)", "\tx", "plain"} {
		e := at(detect.FailedLogin, time.Now().Add(time.Duration(i)*time.Millisecond), "192.0.2.1", u)
		log.Append(e)
	}
	var buf bytes.Buffer
	n, err := Export(context.Background(), &buf, log, respond.EventFilter{}, ExportOptions{Format: FormatCSV})
	if err != nil || n != 6 {
		t.Fatalf("exported %d: %v", n, err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("header %v", rows[0])
	}
	for _, r := range rows[1:] {
		user := r[5]
		if user != "plain" && !strings.HasPrefix(user, "'") {
			t.Errorf("cell %q is not defused", user)
		}
	}
}

func TestNDJSONExportPagesThroughEverything(t *testing.T) {
	log := respond.NewMemoryEvents(5000)
	for i := 0; i < 2500; i++ {
		log.Append(at(detect.FailedLogin, time.Now(), "192.0.2.1", "u"))
	}
	var buf bytes.Buffer
	n, err := Export(context.Background(), &buf, log, respond.EventFilter{}, ExportOptions{Format: FormatNDJSON})
	if err != nil || n != 2500 || strings.Count(buf.String(), "\n") != 2500 {
		t.Fatalf("exported %d lines %d: %v", n, strings.Count(buf.String(), "\n"), err)
	}
	buf.Reset()
	if n, _ := Export(context.Background(), &buf, log, respond.EventFilter{}, ExportOptions{Format: FormatNDJSON, Max: 1200}); n != 1200 {
		t.Fatalf("max 1200 exported %d", n)
	}
}
