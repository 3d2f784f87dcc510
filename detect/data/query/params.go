package query

import (
	"math"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

// maxName bounds a normalised parameter name: longer ones name nothing
// Query looks at, and the name fits in a buffer on the stack.
const maxName = 40

// maxValue is where values saturate, far above any limit.
const maxValue = 1 << 62

// Query judges the raw query string of a request: a page size above
// PageSize.Max ("page_size") or a page beyond MaxPage ("deep_pagination"),
// page size first. It reads the query as the lenient frameworks do, so
// that no spelling slips past: names compare without case, '_', '-' or a
// leading '$' (perPage, PER_PAGE, $top), JSON:API brackets name their
// inner key (page[size] is size, page[number] is page, limit[] is limit),
// escapes and '+' are decoded, '&' and ';' both separate, a repeated
// parameter counts at its largest (Express keeps all, Flask the first,
// PHP the last), and a value is its leading number (parseInt, intval),
// with an exponent (1e6) read as JavaScript's Number does. A negative page
// size, which many APIs read as "no limit", is unusual too. It does not
// allocate unless it reports.
func (d *Detector) Query(rawQuery string) (Finding, bool) {
	if len(d.sizes) == 0 || rawQuery == "" {
		return Finding{}, false
	}
	size, sizeParam := int64(0), -1 // the worst page size; -1: none seen
	deep, deepParam := int64(0), ""
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest = nextPair(rest)
		name, value, _ := strings.Cut(pair, "=")
		var buf [maxName]byte
		n, ok := normName(&buf, name)
		if !ok || n == 0 {
			continue
		}
		v, ok := parseValue(value)
		if !ok {
			continue
		}
		nm := buf[:n]
		if i := d.sizeIndex(nm); i >= 0 {
			if sizeParam < 0 || worse(v, size) {
				size, sizeParam = v, i
			}
			continue
		}
		if p, limit := d.depth(nm); p != "" && v > limit && v > deep {
			deep, deepParam = v, p
		}
	}
	if sizeParam >= 0 && (size < 0 || size > int64(d.opt.PageSize.Max)) {
		return Finding{Kind: "page_size", Details: detect.Details{
			"kind": "page_size", "param": d.sizeOrig[sizeParam], "value": size, "max": int64(d.opt.PageSize.Max),
		}}, true
	}
	if deepParam != "" {
		limit := d.maxPage
		if deepParam != "page" {
			limit = d.maxRows
		}
		return Finding{Kind: "deep_pagination", Details: detect.Details{
			"kind": "deep_pagination", "param": deepParam, "value": deep, "max": limit,
		}}, true
	}
	return Finding{}, false
}

// worse reports whether page size v asks for more than w: a negative one
// (no limit) most of all.
func worse(v, w int64) bool {
	if v < 0 || w < 0 {
		return v < 0 && w >= 0
	}
	return v > w
}

// sizeIndex returns which page-size parameter nm is, or -1.
func (d *Detector) sizeIndex(nm []byte) int {
	for i, s := range d.sizes {
		if string(nm) == s {
			return i
		}
	}
	return -1
}

// depth says whether nm is a pagination position and how far it may go:
// page numbers up to MaxPage, row offsets up to MaxPage × Max.
func (d *Detector) depth(nm []byte) (string, int64) {
	switch string(nm) {
	case "page", "pagenumber", "pageindex", "pageno":
		return "page", d.maxPage
	case "offset":
		return "offset", d.maxRows
	case "skip":
		return "skip", d.maxRows
	}
	return "", 0
}

// normName writes the normalised form of a raw (escaped) parameter name
// into buf and returns its length; false when it does not fit.
func normName(buf *[maxName]byte, raw string) (int, bool) {
	n := 0
	for dec := (decoder{s: raw, plus: true}); ; {
		c, ok := dec.next()
		if !ok {
			break
		}
		switch c = lower(c); {
		case c == '_' || c == '-' || c == ' ' || c == '\t':
		case c == '$' && n == 0:
		case n == maxName:
			return 0, false
		default:
			buf[n] = c
			n++
		}
	}
	// page[size] → size, limit[] → limit, page[number] → page
	if n < 2 || buf[n-1] != ']' {
		return n, true
	}
	open := -1
	for i := n - 2; i >= 0; i-- {
		if buf[i] == '[' {
			open = i
			break
		}
	}
	if open < 0 {
		return n, true
	}
	if open == n-2 { // name[]
		first := 0
		for first < n && buf[first] != '[' {
			first++
		}
		return first, true
	}
	inner := buf[open+1 : n-1]
	if string(inner) == "number" {
		return copy(buf[:], "page"), true
	}
	return copy(buf[:], inner), true
}

// parseValue reads the leading number of a raw value, saturating: digits,
// an ignored fraction and an optional exponent; false when there is none.
func parseValue(raw string) (int64, bool) {
	dec := decoder{s: raw, plus: true}
	c, ok := dec.next()
	for ok && (c == ' ' || c == '\t') {
		c, ok = dec.next()
	}
	neg := false
	if ok && (c == '+' || c == '-') {
		neg = c == '-'
		c, ok = dec.next()
	}
	var v float64
	digits := 0
	for ; ok && '0' <= c && c <= '9'; c, ok = dec.next() {
		v = v*10 + float64(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if ok && c == '.' {
		for c, ok = dec.next(); ok && '0' <= c && c <= '9'; c, ok = dec.next() {
		}
	}
	if ok && (c == 'e' || c == 'E') {
		e := 0
		for c, ok = dec.next(); ok && '0' <= c && c <= '9' && e < 400; c, ok = dec.next() {
			e = e*10 + int(c-'0')
		}
		v *= math.Pow(10, float64(e))
	}
	if v >= maxValue {
		v = maxValue
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// decoder yields the bytes of a query component, percent escapes decoded
// and, with plus, '+' as a space.
type decoder struct {
	s    string
	i    int
	plus bool
}

func (d *decoder) next() (byte, bool) {
	if d.i >= len(d.s) {
		return 0, false
	}
	c := d.s[d.i]
	d.i++
	switch {
	case c == '%' && d.i+1 < len(d.s) && isHex(d.s[d.i]) && isHex(d.s[d.i+1]):
		c = unhex(d.s[d.i])<<4 | unhex(d.s[d.i+1])
		d.i += 2
	case c == '+' && d.plus:
		c = ' '
	}
	return c, true
}
