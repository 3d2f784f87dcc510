package session

import (
	"net/http"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

// maxCandidates bounds the session tokens one request may carry: every
// copy of the session cookie and every bearer credential is verified, so a
// request carrying more is refused as malformed rather than verified without
// bound (or half-verified: the copy left out could be the one the app reads).
const maxCandidates = 4

// tokenSet is the session tokens found in one request. It lives on the
// stack: the tokens are substrings of the request's headers, copied only
// when they had to be decoded or canonicalized.
type tokenSet struct {
	tok      [maxCandidates]string
	n        int
	overflow bool // more than maxCandidates distinct tokens
}

// add records a candidate in canonical form, once.
func (t *tokenSet) add(v string) {
	v = canonicalToken(v)
	if v == "" {
		return
	}
	for _, have := range t.tok[:t.n] {
		if have == v {
			return
		}
	}
	if t.n == maxCandidates {
		t.overflow = true
		return
	}
	t.tok[t.n] = v
	t.n++
}

// canonicalToken undoes what parsers other than Vigil's accept in a JWT but
// is never part of one, so that the token the app verifies is the token Vigil
// verifies: '=' padding (PyJWT, Node pad or ignore it), the standard base64
// alphabet's '+' and '/' (decoded as '-' and '_' by the lenient decoders).
// A token without any of them is returned as is, without allocating.
func canonicalToken(v string) string {
	if strings.IndexByte(v, '%') >= 0 {
		v = detect.PercentDecode(v, false)
	}
	// strings.IndexByte is vectorized: four passes over a token are much
	// cheaper than one byte-by-byte loop
	if strings.IndexByte(v, '=') < 0 && strings.IndexByte(v, '+') < 0 && strings.IndexByte(v, '/') < 0 {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '=':
		case '+':
			b.WriteByte('-')
		case '/':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isSpace is the whitespace HTTP parsers trim: space, tab, CR, LF.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// bearerTokens adds the credentials of one Authorization-style header value.
// Every comma-separated credential counts (a proxy may have joined two
// headers into one); the scheme is split from the token on any whitespace
// and compared case-insensitively ("Bearer\t<token>" is read by Python's
// split()); every whitespace-separated word after "Bearer" is a candidate
// (apps differ on which they take). A custom header also takes the bare
// token.
func bearerTokens(v string, custom bool, t *tokenSet) {
	// the usual "Bearer <token>", examined with vectorized scans only
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") && !isSpace(v[7]) && indexSep(v[7:], ',') < 0 {
		t.add(v[7:])
		return
	}
	for len(v) > 0 {
		var cred string
		if i := strings.IndexByte(v, ','); i >= 0 {
			cred, v = v[:i], v[i+1:]
		} else {
			cred, v = v, ""
		}
		scheme, rest := nextWord(cred)
		switch {
		case len(scheme) == 6 && strings.EqualFold(scheme, "bearer"):
			for w, more := nextWord(rest); w != ""; w, more = nextWord(more) {
				t.add(w)
			}
		case custom && scheme != "":
			if w, _ := nextWord(rest); w == "" {
				t.add(scheme)
			}
		}
	}
}

// indexSep is the index of the first whitespace or sep byte in s, or -1.
func indexSep(s string, sep byte) int {
	i := strings.IndexByte(s, sep)
	for _, c := range [...]byte{' ', '\t', '\r', '\n'} {
		if j := strings.IndexByte(s, c); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	return i
}

// nextWord returns the first whitespace-separated word of s and the rest.
func nextWord(s string) (word, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isSpace(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// cookieTokens adds every value the header lines give the cookie name,
// as any common parser could read them: each copy of the cookie (Go skips
// malformed copies, PHP takes the first, Django the last), names and values
// trimmed of whitespace (Go and npm trim "sid =…"), double quotes removed,
// ';' and ',' as separators, and PHP's mangling of '.', ' ' and '[' in names
// into '_'. It does not parse every cookie into a slice, as
// http.Request.Cookie would (allocating for each).
func cookieTokens(h http.Header, name string, t *tokenSet) {
	// find the name by its longest part without '_' (which PHP mangling
	// may change), with a vectorized search rather than byte by byte
	needle, needleAt := name, 0
	for rest, at := name, 0; rest != ""; {
		part, after, _ := strings.Cut(rest, "_")
		if len(part) > len(needle) || needle == name {
			needle, needleAt = part, at
		}
		at += len(part) + 1
		rest = after
	}
	if needle == "" {
		needle, needleAt = name, 0
	}
	for _, line := range h["Cookie"] {
		for off := 0; off < len(line); {
			k := strings.Index(line[off:], needle)
			if k < 0 {
				break
			}
			i := off + k - needleAt
			off += k + 1
			if i < 0 || i > 0 && !isCookieSep(line[i-1]) {
				continue
			}
			n := cookieNameAt(line[i:], name)
			if n == 0 {
				continue
			}
			j := i + n
			for j < len(line) && isSpace(line[j]) {
				j++
			}
			if j == len(line) || line[j] != '=' {
				continue
			}
			j++
			for j < len(line) && isSpace(line[j]) {
				j++
			}
			v := line[j:]
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
				if e := strings.IndexByte(v, '"'); e >= 0 {
					v = v[:e]
				}
			}
			if e := indexSep(v, ';'); e >= 0 {
				v = v[:e]
			}
			if e := strings.IndexByte(v, ','); e >= 0 {
				v = v[:e]
			}
			t.add(v)
		}
	}
}

func isCookieSep(c byte) bool { return c == ';' || c == ',' || isSpace(c) }

// cookieNameAt reports the length of name at the start of s, with PHP's
// mangling allowed (a '_' of the name may be sent as '.', ' ' or '['), or 0.
func cookieNameAt(s, name string) int {
	if len(s) < len(name) {
		return 0
	}
	for i := 0; i < len(name); i++ {
		c := s[i]
		if c == name[i] || name[i] == '_' && (c == '.' || c == ' ' || c == '[') {
			continue
		}
		return 0
	}
	return len(name)
}
