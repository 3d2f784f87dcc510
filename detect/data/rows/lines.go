package rows

import "bytes"

// writeCSV follows RFC 4180 with quote parity: every '"' toggles the quoted
// state, which is exact for well-formed CSV (a quoted field opens and closes
// with a quote and doubles the quotes inside it, "" toggling twice), and
// only the positions of '"' and '\n' matter. Both are found with
// bytes.IndexByte and remembered until passed, so each quote and each
// newline costs one memchr. A stray quote inside an unquoted field (invalid
// CSV) opens a quoted run, usually left unterminated, which Close reports.
func (c *Counter) writeCSV(p []byte) {
	i, n := 0, len(p)
	q, nl := -1, -1 // the next '"' and '\n' at or after i once >= i; n when none
	for i < n {
		if q < i {
			q = next(p, i, '"')
		}
		if c.quoted {
			if q == n {
				return // the rest of the chunk is inside the quoted field
			}
			c.quoted = false
			i = q + 1
			continue
		}
		if nl < i {
			nl = next(p, i, '\n')
		}
		if q < nl {
			c.line = lineContent
			c.quoted = true
			i = q + 1
			continue
		}
		c.csvContent(p[i:nl])
		if nl == n {
			return
		}
		if c.line == lineContent {
			c.n++
		}
		c.line = lineEmpty
		i = nl + 1
	}
}

// next returns the position of the first b in p at or after i, or len(p).
func next(p []byte, i int, b byte) int {
	if j := bytes.IndexByte(p[i:], b); j >= 0 {
		return i + j
	}
	return len(p)
}

// csvContent records that seg (free of quotes and newlines) is part of the
// current line. Only the exact lines "" and "\r" are empty, as in
// encoding/csv, which turns CRLF into LF and skips empty lines.
func (c *Counter) csvContent(seg []byte) {
	switch {
	case len(seg) == 0 || c.line == lineContent:
	case c.line == lineEmpty && len(seg) == 1 && seg[0] == '\r':
		c.line = lineCR
	default:
		c.line = lineContent
	}
}

// closeCSV counts a final record that has no trailing newline. A lone CR
// before the end is dropped (encoding/csv does the same), so it is not one.
func (c *Counter) closeCSV() {
	if c.quoted {
		c.err = errUnterminatedQuote
		return
	}
	if c.line == lineContent {
		c.n++
		c.line = lineEmpty
	}
}

// blank marks the bytes that do not make an NDJSON line a record: JSON
// whitespace, plus the vertical tab and form feed that some writers pad with.
var blank = [256]bool{' ': true, '\t': true, '\r': true, '\n': true, '\v': true, '\f': true}

// writeNDJSON counts non-blank lines. The JSON on a line is not parsed: a
// line is a record as soon as it holds one non-blank byte, after which the
// end of the line is found with bytes.IndexByte, so the cost per line is one
// memchr plus the few leading bytes looked at one by one.
func (c *Counter) writeNDJSON(p []byte) {
	i, n := 0, len(p)
	for i < n {
		if c.line == lineContent {
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return
			}
			c.n++
			c.line = lineEmpty
			i += j + 1
			continue
		}
		for i < n && blank[p[i]] {
			i++
		}
		if i < n {
			c.line = lineContent
		}
	}
}
