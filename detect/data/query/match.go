package query

import (
	"errors"
	"net/url"
	"strings"
)

// maxSegs bounds the segments of a pattern and of a cleaned path: a
// deeper path matches no pattern, and the splitter needs no allocation.
const maxSegs = 32

// pattern is a compiled Enumeration pattern.
type pattern struct {
	segs []patSeg
	id   int // index of the {name} segment
}

// patSeg is one segment: a lower-case literal, a lower-case glob, or the id.
type patSeg struct {
	text string
	glob bool
	id   bool
}

// span is one segment of a cleaned path, [from, to) in the path or buffer.
type span struct{ from, to int }

// compile parses an enumeration pattern.
func compile(p string) (pattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pattern{}, errors.New("the pattern must start with /")
	}
	out := pattern{id: -1}
	for _, s := range strings.Split(p, "/") {
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && len(s) > 2 && !strings.ContainsAny(s[1:len(s)-1], "{}*") {
			if out.id >= 0 {
				return pattern{}, errors.New("the pattern has more than one {id} segment")
			}
			out.id = len(out.segs)
			out.segs = append(out.segs, patSeg{id: true})
			continue
		}
		if strings.ContainsAny(s, "{}") {
			return pattern{}, errors.New("a {name} must be a whole segment: " + s)
		}
		lit, err := url.PathUnescape(s)
		if err != nil || lit == "." || lit == ".." || strings.ContainsAny(lit, "/;") {
			return pattern{}, errors.New("bad segment " + s)
		}
		out.segs = append(out.segs, patSeg{text: strings.ToLower(lit), glob: strings.Contains(lit, "*")})
	}
	if out.id < 0 {
		return pattern{}, errors.New("the pattern has no {id} segment")
	}
	if len(out.segs) > maxSegs {
		return pattern{}, errors.New("the pattern is too deep")
	}
	return out, nil
}

// Match reports whether path is one of the enumeration patterns, which one
// (its index in Options.Enumerations) and the id it names. path is the
// request's path as it arrived (escaped) or decoded: it is read as apps
// read it, percent-decoded once, `;params` stripped from every segment
// (Tomcat, Jetty), empty and "." segments dropped and ".." applied, so a
// trailing slash or a doubled one changes nothing; literals compare
// without ASCII case. A numeric id loses its leading zeros (005 is 5), as
// an app parsing an integer sees it. It allocates only for an id that had
// to be decoded.
func (d *Detector) Match(path string) (enum int, id string, ok bool) {
	if len(d.enums) == 0 {
		return 0, "", false
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	var segs [maxSegs]span
	if strings.IndexByte(path, '%') < 0 && strings.IndexByte(path, ';') < 0 {
		n, fits := split(path, &segs)
		if !fits {
			return 0, "", false
		}
		if e, a, b, ok := find(d, path, segs[:n]); ok {
			return e, path[a:b], true
		}
		return 0, "", false
	}
	var stack [256]byte
	buf := stack[:0]
	if len(path) > len(stack) {
		buf = make([]byte, 0, len(path))
	}
	buf = decodePath(buf, path)
	n, fits := split(buf, &segs)
	if !fits {
		return 0, "", false
	}
	if e, a, b, ok := find(d, buf, segs[:n]); ok {
		return e, string(buf[a:b]), true
	}
	return 0, "", false
}

// find returns the first pattern that the segments match and the bounds
// of its id, leading zeros of a number left out.
func find[S ~string | ~[]byte](d *Detector, s S, segs []span) (int, int, int, bool) {
	for e, p := range d.enums {
		if len(p.segs) != len(segs) || !matches(&p, s, segs) {
			continue
		}
		a, b := segs[p.id].from, segs[p.id].to
		return e, a + numericZeros(s[a:b]), b, true
	}
	return 0, 0, 0, false
}

// matches compares every segment but the id's.
func matches[S ~string | ~[]byte](p *pattern, s S, segs []span) bool {
	for i, ps := range p.segs {
		sg := segs[i]
		if ps.id {
			if sg.to == sg.from {
				return false
			}
			continue
		}
		if !segMatch(s[sg.from:sg.to], ps) {
			return false
		}
	}
	return true
}

// numericZeros returns how many leading zeros to drop from an all-digit
// id (all but the last digit of "000").
func numericZeros[S ~string | ~[]byte](id S) int {
	z := 0
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return 0
		}
		if id[i] == '0' && z == i && i < len(id)-1 {
			z++
		}
	}
	return z
}

// decodePath appends path to buf with `;params` cut from each segment and
// percent escapes decoded (once; a malformed escape stays as it is).
func decodePath(buf []byte, path string) []byte {
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == ';':
			for i+1 < len(path) && path[i+1] != '/' {
				i++
			}
		case c == '%' && i+2 < len(path) && isHex(path[i+1]) && isHex(path[i+2]):
			buf = append(buf, unhex(path[i+1])<<4|unhex(path[i+2]))
			i += 2
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// split cuts s into its cleaned segments; false when deeper than maxSegs.
func split[S ~string | ~[]byte](s S, segs *[maxSegs]span) (int, bool) {
	n := 0 // depth; only the first maxSegs are stored
	for i := 0; i < len(s); {
		for i < len(s) && s[i] == '/' {
			i++
		}
		j := i
		for j < len(s) && s[j] != '/' {
			j++
		}
		switch seg := s[i:j]; {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			n = max(n-1, 0)
		default:
			if n < maxSegs {
				segs[n] = span{i, j}
			}
			n++
		}
		i = j
	}
	return n, n <= maxSegs
}

// segMatch compares a path segment with a lower-case literal or glob.
func segMatch[S ~string | ~[]byte](s S, p patSeg) bool {
	if !p.glob {
		if len(s) != len(p.text) {
			return false
		}
		for i := 0; i < len(s); i++ {
			if lower(s[i]) != p.text[i] {
				return false
			}
		}
		return true
	}
	return globMatch(s, p.text)
}

// globMatch matches s against a lower-case pattern where * is any run of
// bytes, by the usual backtracking on the last star (linear for one star).
func globMatch[S ~string | ~[]byte](s S, pat string) bool {
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && pat[pi] == lower(s[si]):
			si++
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= lower(c) && lower(c) <= 'f'
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return lower(c) - 'a' + 10
}
