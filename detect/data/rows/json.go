package rows

import "bytes"

// Where a JSON body is relative to its top-level array. Only the top level
// is parsed token by token; inside an item only strings and brackets matter.
const (
	jStart  uint8 = iota // before '[': a BOM and whitespace are allowed
	jFirst               // after '[': an item or ']'
	jNext                // after ',': an item
	jScalar              // inside a top-level number or literal
	jAfter               // after an item: ',' or ']'
	jNested              // inside an item that is a string, an object or an array
	jDone                // after the closing ']': whitespace only
)

// maxKinds bounds the nesting depth whose bracket kinds are remembered, to
// keep the state constant; deeper brackets are only counted, so a mismatch
// deeper than this goes unnoticed but the count stays right.
const maxKinds = int64(64 * len(Counter{}.kinds))

var bom = [3]byte{0xEF, 0xBB, 0xBF}

// Byte classes inside an item: strings are skipped with bytes.IndexByte,
// brackets change the depth, and everything else is passed over. (Searching
// 8 bytes at a time with SWAR instead, for short strings, was measured and
// was slower than memchr on the export benchmark, so it is not done.)
const (
	cOther uint8 = iota
	cQuote
	cOpen
	cClose
)

var class = [256]uint8{'"': cQuote, '[': cOpen, '{': cOpen, ']': cClose, '}': cClose}

// space is JSON whitespace (RFC 8259), the only bytes allowed between tokens
// at the top level.
var space = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

// scalar marks the bytes of numbers and of true, false and null; the first
// byte of an item must be one of "-0123456789tfn" to start one.
var scalar = func() (t [256]bool) {
	for _, b := range []byte("0123456789+-.eEtruefalsn") {
		t[b] = true
	}
	return t
}()

// writeJSON counts the items of the top-level array, one item when it is
// complete: at the ']' or '}' closing it, at the '"' ending it, or at the
// byte after a number or literal.
func (c *Counter) writeJSON(p []byte) {
	i, n := 0, len(p)
	for i < n && c.err == errNone {
		switch c.phase {
		case jNested:
			i = c.nested(p, i)
		case jScalar:
			for i < n && scalar[p[i]] {
				i++
			}
			if i < n {
				c.item()
			}
		default:
			c.top(p[i])
			i++
		}
	}
}

// item counts a complete top-level item.
func (c *Counter) item() {
	c.n++
	c.phase = jAfter
}

// top handles one byte outside any item.
func (c *Counter) top(b byte) {
	if c.phase == jStart {
		c.start(b)
		return
	}
	if space[b] {
		return
	}
	switch c.phase {
	case jFirst, jNext:
		if b == ']' && c.phase == jFirst {
			c.depth = 0
			c.phase = jDone
			return
		}
		c.value(b)
	case jAfter:
		switch b {
		case ',':
			c.phase = jNext
		case ']':
			c.depth = 0
			c.phase = jDone
		default:
			c.err = errSyntax
		}
	case jDone:
		c.err = errTrailing
	}
}

// start accepts an optional UTF-8 BOM (which some exporters write), then
// whitespace, then the '[' that makes the body an array.
func (c *Counter) start(b byte) {
	if c.bom < uint8(len(bom)) {
		if b == bom[c.bom] {
			c.bom++
			return
		}
		if c.bom > 0 { // a partial BOM
			c.err = errNotArray
			return
		}
		c.bom = uint8(len(bom))
	}
	switch {
	case space[b]:
	case b == '[':
		c.depth = 1
		c.phase = jFirst
	default:
		c.err = errNotArray
	}
}

// value starts a top-level item with its first byte.
func (c *Counter) value(b byte) {
	switch {
	case b == '"':
		c.quoted = true
		c.phase = jNested
	case b == '{' || b == '[':
		c.push(b == '{')
		c.phase = jNested
	case b == '-' || b >= '0' && b <= '9' || b == 't' || b == 'f' || b == 'n':
		c.phase = jScalar
	default:
		c.err = errSyntax
	}
}

// nested passes over the inside of an item from p[i], returning where it
// stopped: the end of p, or just after the byte that completed the item.
func (c *Counter) nested(p []byte, i int) int {
	n := len(p)
	for i < n {
		if c.quoted {
			i = c.skipString(p, i)
			if c.quoted {
				return n
			}
			if c.depth == 1 {
				c.item()
				return i
			}
			continue
		}
		for i < n && class[p[i]] == cOther {
			i++
		}
		if i == n {
			return n
		}
		b := p[i]
		i++
		switch class[b] {
		case cQuote:
			c.quoted = true
		case cOpen:
			c.push(b == '{')
		case cClose:
			if !c.pop(b == '}') {
				c.err = errUnbalanced
				return n
			}
			if c.depth == 1 {
				c.item()
				return i
			}
		}
	}
	return i
}

// skipString passes over string content from p[i] with bytes.IndexByte for
// '"', deciding whether a quote is escaped by the parity of the backslashes
// just before it, so backslashes cost nothing unless they precede a quote.
// It returns just after the closing quote, or len(p) with c.escape telling
// whether the chunk ended in the middle of an escape.
func (c *Counter) skipString(p []byte, i int) int {
	if c.escape {
		c.escape = false
		i++ // the escaped byte, whatever it is
	}
	for {
		j := bytes.IndexByte(p[i:], '"')
		if j < 0 {
			c.escape = oddBackslashes(p[i:])
			return len(p)
		}
		q := i + j
		if !oddBackslashes(p[i:q]) {
			c.quoted = false
			return q + 1
		}
		i = q + 1
	}
}

// oddBackslashes tells whether s ends with an odd run of backslashes, which
// escapes the byte that follows. s starts outside any escape.
func oddBackslashes(s []byte) bool {
	k := len(s)
	for k > 0 && s[k-1] == '\\' {
		k--
	}
	return (len(s)-k)%2 == 1
}

// push enters an object or array.
func (c *Counter) push(object bool) {
	c.depth++
	if d := c.depth; d < maxKinds {
		bit := uint64(1) << (d % 64)
		if object {
			c.kinds[d/64] |= bit
		} else {
			c.kinds[d/64] &^= bit
		}
	}
}

// pop leaves an object or array, reporting whether the closing bracket
// matches the opening one (when the depth is shallow enough to know).
func (c *Counter) pop(object bool) bool {
	d := c.depth
	c.depth--
	if d >= maxKinds {
		return true
	}
	return (c.kinds[d/64]&(uint64(1)<<(d%64)) != 0) == object
}

// closeJSON reports a body that did not end right after its array.
func (c *Counter) closeJSON() {
	if c.err != errNone || c.phase == jDone {
		return
	}
	if c.phase == jStart {
		c.err = errEmpty
		if c.bom > 0 && c.bom < uint8(len(bom)) {
			c.err = errNotArray // a partial BOM
		}
		return
	}
	c.err = errTruncated
}
