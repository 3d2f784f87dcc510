package report

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

//go:embed report.html.tmpl
var pageSource string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"title": func(id string) string { return SectionTitles[id] },
	"ts":    tsText,
	"day":   func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"heat":  heat,
	"types": func(ts []detect.Type) string { return strings.Join(typeNames(ts), ", ") },
	"lower": strings.ToLower,
	"cls":   func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"max":   matrixMax,
	"hours": func(b []int) int { return maxOf(b) },
	"pct":   func(part, all int) string { return percent(part, all) },
	"yes": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
}).Parse(pageSource))

// HTML writes the report as one self-contained page: inline CSS, no script,
// no external resource, print rules for `chromium --headless
// --print-to-pdf` (a page per section, table headers repeated, rows never
// split).
func (r *Report) HTML(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if err := page.Execute(bw, r); err != nil {
		return fmt.Errorf("report: rendering HTML: %w", err)
	}
	return bw.Flush()
}

// JSON writes the report as one indented JSON object.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: encoding JSON: %w", err)
	}
	return nil
}

func tsText(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// heat grades a cell 0–4 against the table's largest value.
func heat(n, top int) string {
	switch {
	case n <= 0 || top <= 0:
		return "h0"
	case n*4 <= top:
		return "h1"
	case n*2 <= top:
		return "h2"
	case n*4 <= top*3:
		return "h3"
	}
	return "h4"
}

func matrixMax(m Matrix) int {
	top := 0
	for _, r := range m.Rows {
		top = max(top, maxOf(r.Cells))
	}
	return top
}

func maxOf(b []int) int {
	top := 0
	for _, n := range b {
		top = max(top, n)
	}
	return top
}

func percent(part, all int) string {
	if all == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(all))
}
