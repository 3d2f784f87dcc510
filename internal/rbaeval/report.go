package rbaeval

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Table writes m as the evaluation table of docs/risk.md (Markdown).
func (m Metrics) Table(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| logins | n | AUC |")
	for _, f := range FPRs {
		fmt.Fprintf(&b, " TPR @ %s FPR |", percent(f))
	}
	fmt.Fprintf(&b, " ≥ challenge (%d) | ≥ block (%d) |\n|---|---:|---:|", m.Challenge, m.Block)
	for range FPRs {
		b.WriteString("---:|")
	}
	b.WriteString("---:|---:|\n")
	for _, k := range Kinds {
		r := m.Kinds[k]
		fmt.Fprintf(&b, "| %s | %d | %.4f |", k, r.N, r.AUC)
		for _, t := range r.TPR {
			fmt.Fprintf(&b, " %s |", percent(t))
		}
		fmt.Fprintf(&b, " %s | %s |\n", percent(r.Flagged), percent(r.Blocked))
	}
	fmt.Fprintf(&b, "| legitimate | %d | | |", m.Legit)
	for range FPRs[1:] {
		b.WriteString(" |")
	}
	fmt.Fprintf(&b, " %s | %s |\n", percent(m.Challenged), percent(m.Blocked))
	_, err := io.WriteString(w, b.String())
	return err
}

// percent prints a share with the precision its size calls for.
func percent(x float64) string {
	p := 100 * x
	switch {
	case p == 0 || p >= 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + " %"
	case p >= 1:
		return strconv.FormatFloat(p, 'f', 2, 64) + " %"
	}
	return strconv.FormatFloat(p, 'f', 3, 64) + " %"
}

// CSVHeader is the header WriteCSV writes: the columns of the RBA dataset
// the generator fills (no round-trip time, region or city; the parsed
// browser, OS and device columns are left to the reader), and the kind of
// attacker.
var CSVHeader = []string{"index", "Login Timestamp", "User ID", "IP Address", "Country", "ASN",
	"User Agent String", "Login Successful", "Is Attack IP", "Is Account Takeover", "Attack Kind"}

// WriteCSV writes the stream as the RBA dataset lays it out: one login a
// row, in time order, the timestamp in UTC with milliseconds.
func (s Stream) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	row := make([]string, len(CSVHeader))
	for i, l := range s.Logins {
		attack := l.Kind != Legit
		row[0] = strconv.Itoa(i)
		row[1] = l.Time.UTC().Format("2006-01-02 15:04:05.000")
		row[2] = l.User
		row[3] = l.IP.String()
		row[4] = l.Country
		row[5] = strconv.FormatUint(uint64(l.ASN), 10)
		row[6] = l.UserAgent
		row[7] = strconv.FormatBool(l.Success)
		row[8] = strconv.FormatBool(attack)
		row[9] = strconv.FormatBool(attack && l.Success)
		row[10] = ""
		if attack {
			row[10] = l.Kind.String()
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
