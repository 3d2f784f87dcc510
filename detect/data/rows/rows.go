// Package rows counts the records of a response body (CSV lines, NDJSON
// lines, the items of a top-level JSON array) while it streams through the
// gateway, so that the export rule can enforce "rows <n> within <dur>" on
// what was actually sent.
//
// The counter sits on the response path of every data-access route, so it is
// built for that place: it never buffers or retains the body (the first byte
// is not delayed and memory per response is a few dozen bytes, whatever the
// size of a record), it accepts writes split anywhere (inside a quote, an
// escape, a CRLF or a UTF-8 character), it does not allocate, and it jumps
// between the bytes that matter with bytes.IndexByte (assembly memchr) rather
// than looking at every byte, to keep up with ≥ 1 GB/s per core.
//
// It counts, it does not validate: a body that is structurally broken for its
// format (an unterminated CSV quote, JSON that is not a top-level array,
// unbalanced or truncated) makes Close return an error, and the caller then
// accounts bytes only; finer syntax errors inside records are not looked for.
// The body must already be decoded (no Content-Encoding).
package rows

import (
	"errors"
	"strings"
)

// Format is the record syntax of a body, chosen from its Content-Type.
type Format uint8

// The formats whose records can be counted. None counts nothing, so an
// unknown body costs the gateway nothing.
const (
	None      Format = iota
	CSV              // RFC 4180: records end at LF or CRLF outside quotes
	NDJSON           // newline-delimited JSON (also JSON Lines, JSON text sequences)
	JSONArray        // the items of a top-level JSON array
)

// String names the format for logs and event details.
func (f Format) String() string {
	switch f {
	case CSV:
		return "csv"
	case NDJSON:
		return "ndjson"
	case JSONArray:
		return "json"
	}
	return "none"
}

// FormatOf maps a Content-Type header value to the format whose records are
// counted. Parameters such as charset are ignored and the comparison is
// case-insensitive, because servers vary in both; anything unrecognised is
// None so the body is accounted in bytes only. It does not allocate.
func FormatOf(contentType string) Format {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	for _, m := range mediaTypes {
		if strings.EqualFold(mt, m.name) {
			return m.format
		}
	}
	const suffix = "+json" // RFC 6839 structured syntax suffix, e.g. application/vnd.api+json
	if len(mt) > len(suffix) && strings.EqualFold(mt[len(mt)-len(suffix):], suffix) {
		return JSONArray
	}
	return None
}

var mediaTypes = [...]struct {
	name   string
	format Format
}{
	{"text/csv", CSV},
	{"application/csv", CSV},
	{"application/x-ndjson", NDJSON},
	{"application/ndjson", NDJSON},
	{"application/jsonl", NDJSON},
	{"application/x-jsonl", NDJSON},
	{"application/jsonlines", NDJSON},
	{"application/x-jsonlines", NDJSON},
	{"application/json-seq", NDJSON}, // RFC 7464: RS-prefixed, LF-terminated records
	{"application/json", JSONArray},
	{"text/json", JSONArray},
}

// Errors returned by Close when the body was malformed for its format. The
// caller then reports the response in bytes only, with the error as a note.
var (
	ErrUnterminatedQuote = errors.New("rows: csv: unterminated quoted field")
	ErrEmpty             = errors.New("rows: json: empty body")
	ErrNotArray          = errors.New("rows: json: not a top-level array")
	ErrUnbalanced        = errors.New("rows: json: unbalanced brackets")
	ErrTruncated         = errors.New("rows: json: truncated")
	ErrSyntax            = errors.New("rows: json: syntax error")
	ErrTrailing          = errors.New("rows: json: data after the top-level array")
)

// errs is indexed by Counter.err, so that the counter holds a byte rather
// than an interface and stays small and comparable.
var errs = [...]error{nil, ErrUnterminatedQuote, ErrEmpty, ErrNotArray, ErrUnbalanced, ErrTruncated, ErrSyntax, ErrTrailing}

const (
	errNone uint8 = iota
	errUnterminatedQuote
	errEmpty
	errNotArray
	errUnbalanced
	errTruncated
	errSyntax
	errTrailing
)

// Counter counts the records of one body. The zero value counts nothing
// (format None); Reset chooses the format. It is a plain value with no
// pointers so it can be embedded in a per-response struct (or pooled with
// it) without an allocation of its own. A Counter is not safe for concurrent
// use; a response body is written by one goroutine.
type Counter struct {
	n      int64     // complete records so far, a CSV header included
	depth  int64     // JSON: nesting depth, 1 inside the top-level array
	kinds  [4]uint64 // JSON: bit d set when level d (< maxKinds) is an object
	format Format
	header bool  // CSV: the first record is a header, not a row
	phase  uint8 // JSON: where in the top-level array we are (j* constants)
	line   uint8 // CSV, NDJSON: what the current line holds so far (line* constants)
	quoted bool  // CSV: inside a quoted field; JSON: inside a string
	escape bool  // JSON: the last string byte seen was an unescaped backslash
	bom    uint8 // JSON: bytes of a leading UTF-8 BOM matched so far
	err    uint8 // first error seen (err* constants); later bytes are ignored
}

// Reset prepares c for a new body of format f, so one Counter can serve
// every response of a pooled struct. header says that a CSV body starts
// with a header record, which is not a row; it is ignored for other formats.
func (c *Counter) Reset(f Format, header bool) {
	*c = Counter{format: f, header: header && f == CSV}
}

// Write counts the records completed by the next bytes of the body. Writes
// may split the body anywhere. It never fails (a malformed body is reported
// by Close) and never retains p, so the caller can pass the buffer it is
// about to send.
func (c *Counter) Write(p []byte) {
	if c.err != errNone {
		return
	}
	switch c.format {
	case CSV:
		c.writeCSV(p)
	case NDJSON:
		c.writeNDJSON(p)
	case JSONArray:
		c.writeJSON(p)
	}
}

// Rows returns the records completed so far, so a cap can be enforced while
// the body is still streaming. A final CSV or NDJSON record without a
// trailing newline is only counted by Close, since more of it may follow.
func (c *Counter) Rows() int64 {
	if c.header && c.n > 0 {
		return c.n - 1
	}
	return c.n
}

// Close ends the body and returns its record count. err is non-nil when the
// body was malformed for its format; rows is then the count up to the point
// where it went wrong, which the caller may note but should not trust.
// Calling Close again returns the same result.
func (c *Counter) Close() (rows int64, err error) {
	switch c.format {
	case CSV:
		c.closeCSV()
	case NDJSON:
		if c.line == lineContent {
			c.n++
			c.line = lineEmpty
		}
	case JSONArray:
		c.closeJSON()
	}
	return c.Rows(), errs[c.err]
}

// What the current line of a CSV or NDJSON body holds so far; a line that
// ends while still lineEmpty (or lineCR, for CSV) is not a record.
const (
	lineEmpty   uint8 = iota
	lineCR            // CSV: a lone CR, so the line may still be an empty CRLF line
	lineContent       // anything else: the line is a record when it ends
)
