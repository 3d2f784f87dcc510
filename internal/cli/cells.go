package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigilsec/vigil/detect"
)

// The pieces of a table: cells cut to a width and cleaned of what a
// terminal would act on, durations and event details in a few characters.

// humanDuration prints how long something lasts, to the second, in days
// and hours beyond two days.
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d >= 48*time.Hour:
		days, hours := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
		return fmt.Sprintf("%dd%dh", days, hours)
	}
	return ShortDuration(d.Round(time.Second))
}

// ShortDuration prints a duration without the zero units Go adds ("1m"
// rather than "1m0s", "24h" rather than "24h0m0s"); the policy summary in
// Caddy's log prints durations the same way.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// leadingDetails come first in a short rendering of details, in this
// order: what explains a decision, before the request's particulars.
var leadingDetails = []string{"action", "target", "reason", "threshold", "window", "account_failures", "ip_failures", "accounts_from_ip", "strike", "duration"}

// shortDetails is an event's details as key=value pairs, the leading ones
// first and the rest sorted, cut at limit runes.
func shortDetails(d detect.Details, limit int) string {
	if len(d) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(d))
	for _, k := range leadingDetails {
		if _, ok := d[k]; ok {
			keys = append(keys, k)
		}
	}
	rest := make([]string, 0, len(d))
	for k := range d {
		if !slices.Contains(leadingDetails, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(keys, rest...)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch v := d[k].(type) {
		case string:
			b.WriteString(v)
		case float64, bool, int, int64:
			fmt.Fprint(&b, v)
		default:
			raw, _ := json.Marshal(v)
			b.Write(raw)
		}
	}
	return cell(b.String(), limit)
}

// cell is a table cell: cleaned, cut at limit runes, "-" when empty.
func cell(s string, limit int) string {
	s = clean(s)
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// clean escapes what a terminal would act on (control characters, escape
// sequences, bidirectional overrides) and tabs, which would break a table.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r)) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != utf8.RuneError && (r == ' ' || unicode.IsPrint(r)) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
