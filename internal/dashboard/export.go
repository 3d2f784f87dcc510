package dashboard

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// MaxExport bounds one export: at most this many events are written (the
// newest matching ones); ask again with until= to go further back.
const MaxExport = 1_000_000

// Export formats.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// CSVHeader names the columns of a CSV export.
var CSVHeader = []string{"id", "time", "type", "severity", "site", "user", "ip", "country", "city", "asn", "details"}

// ContentType is the media type of an export format.
func ContentType(format string) string {
	if format == FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// ExportOptions say how to export.
type ExportOptions struct {
	Format string // FormatNDJSON or FormatCSV
	// Max bounds the events written (0 or above MaxExport: MaxExport).
	Max int
}

// Export writes the events f matches, newest first, paging through the
// log with its cursor so that memory stays at one page whatever the size.
// It answers how many events were written.
func Export(ctx context.Context, w io.Writer, log respond.EventLog, f respond.EventFilter, opt ExportOptions) (int, error) {
	if opt.Format != FormatNDJSON && opt.Format != FormatCSV {
		return 0, fmt.Errorf("format %q: want ndjson or csv", opt.Format)
	}
	limit := opt.Max
	if limit <= 0 || limit > MaxExport {
		limit = MaxExport
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	if opt.Format == FormatCSV {
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, err
		}
	}
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	f.Limit = 1000
	n := 0
	for n < limit {
		page, err := log.Query(ctx, f)
		if err != nil {
			return n, err
		}
		for _, e := range page.Events[:min(len(page.Events), limit-n)] {
			if cw != nil {
				err = cw.Write(CSVRecord(e))
			} else {
				err = enc.Encode(e)
			}
			if err != nil {
				return n, err
			}
			n++
		}
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return n, err
			}
		}
		if err := bw.Flush(); err != nil {
			return n, err
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	return n, nil
}

// CSVRecord is one event as a CSV row. Every cell a spreadsheet could read
// as a formula is defused (SafeCell).
func CSVRecord(e detect.Event) []string {
	details := ""
	if len(e.Details) > 0 {
		b, _ := json.Marshal(e.Details)
		details = string(b)
	}
	asn := ""
	if e.ASN != 0 {
		asn = strconv.FormatUint(uint64(e.ASN), 10)
	}
	row := []string{e.ID, e.Time.UTC().Format(time.RFC3339Nano), string(e.Type), e.Severity.String(),
		e.Site, e.User, e.IP, e.Country, e.City, asn, details}
	for i := range row {
		row[i] = SafeCell(row[i])
	}
	return row
}

// SafeCell defuses a cell that a spreadsheet would evaluate: one starting
// with =, +, -, @, a tab or a carriage return gets a leading apostrophe
// (OWASP's advice for CSV injection), so it is shown as text.
func SafeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
