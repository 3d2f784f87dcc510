package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilsec/vigil/respond/report"
)

// handleReport answers GET /vigil/report?from=&to=&format=html|csv|json:
// the compliance report of a period (default: the last 30 days) from the
// events, the decisions in force, this instance's alert delivery figures
// and the audit chain's verification.
func (a *adminAPI) handleReport(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	now := time.Now().UTC()
	from, to, err := reportPeriod(q.Get("from"), q.Get("to"), now)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	format := strings.ToLower(q.Get("format"))
	st := app.store()
	in := report.Input{Events: st.Events, From: from, To: to, Decisions: st.Cache.List(now), Generated: now,
		Alerts: alertFigures(), Audit: app.auditStatus()}
	rep, err := report.Build(r.Context(), in)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
	}
	switch format {
	case "", "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return rep.HTML(w)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="vigil-report.csv"`)
		return rep.CSV(w)
	case "json":
		w.Header().Set("Content-Type", "application/json")
		return rep.JSON(w)
	}
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("format %q: want html, csv or json", format)}
}

// reportPeriod reads from and to as dates (2026-11-01, UTC midnight) or
// RFC 3339 times; by default the 30 days up to now.
func reportPeriod(fromS, toS string, now time.Time) (from, to time.Time, err error) {
	to, from = now, now.Add(-30*24*time.Hour)
	if toS != "" {
		if to, err = reportTime(toS); err != nil {
			return from, to, fmt.Errorf("to: %w", err)
		}
	}
	if fromS != "" {
		if from, err = reportTime(fromS); err != nil {
			return from, to, fmt.Errorf("from: %w", err)
		}
	} else if toS != "" {
		from = to.Add(-30 * 24 * time.Hour)
	}
	return from, to, nil
}

func reportTime(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is neither a date (2026-11-01) nor an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// alertFigures are this process's alert delivery counts per channel type,
// read from the metrics (since the process started).
func alertFigures() map[string]report.AlertFigures {
	out := map[string]report.AlertFigures{}
	read := func(c prometheus.Collector, add func(f *report.AlertFigures, v uint64)) {
		ch := make(chan prometheus.Metric, 64)
		go func() { c.Collect(ch); close(ch) }()
		for m := range ch {
			var d dto.Metric
			if m.Write(&d) != nil || d.Counter == nil {
				continue
			}
			for _, l := range d.Label {
				if l.GetName() == "channel" {
					f := out[l.GetValue()]
					add(&f, uint64(d.Counter.GetValue()))
					out[l.GetValue()] = f
				}
			}
		}
	}
	read(alertsSent, func(f *report.AlertFigures, v uint64) { f.Sent += v })
	read(alertsFailed, func(f *report.AlertFigures, v uint64) { f.Failed += v })
	read(alertsDropped, func(f *report.AlertFigures, v uint64) { f.Dropped += v })
	return out
}
