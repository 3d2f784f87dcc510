package detect

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxUsernameBytes bounds a username taken from a request; longer ones are
// refused as malformed input (the attempt still counts against the IP).
const MaxUsernameBytes = 1024

// ErrNoUser means the request did not name a user.
var ErrNoUser = errors.New("username field not found")

// CheckUsername accepts a username read from a request, trimmed of the
// space apps trim (Go's TrimSpace, Django's forms) before any check: then
// non-empty, at most MaxUsernameBytes, valid UTF-8.
func CheckUsername(u string) (string, error) {
	u = strings.TrimSpace(u)
	switch {
	case u == "":
		return "", ErrNoUser
	case len(u) > MaxUsernameBytes:
		return "", errors.New("username longer than 1024 bytes")
	case !utf8.ValidString(u):
		return "", errors.New("username is not valid UTF-8")
	}
	return u, nil
}

// Display shortens any client-supplied text (a username, a host, a path, a
// User-Agent) for logs and events: at most 256 bytes, cut on a rune
// boundary, so no client can make an event large; control characters and
// invalid UTF-8 are left to the JSON encoder to escape or replace.
func Display(s string) string {
	const limit = 256
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}

// ClientNet is what per-address counters and automatic blocks key on: the
// address itself for IPv4, and its /64 for IPv6, because one IPv6 client
// usually holds a whole /64 and could otherwise rotate through it to dodge
// every per-address counter and fill the decision store with one block per
// address. Events still carry the full address.
func ClientNet(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// secretParams are query and form parameters whose values are never
// recorded: a password or token sent in a URL must not reach an event, a
// log or Redis.
var secretParams = []string{
	"password", "passwd", "pass", "pwd", "secret", "token", "access_token",
	"refresh_token", "id_token", "api_key", "apikey", "key", "code", "session",
	"sessionid", "auth", "authorization", "credential", "otp", "pin", "signature", "sig",
}

// RedactQuery replaces the values of secret-looking parameters of a raw
// query with "REDACTED". A parameter is secret when its decoded name, in
// any case, is one of secretParams or ends in one after a '_' or '-'
// ("user_password", "x-api-key"). The rest of the query is kept as sent.
func RedactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	var b strings.Builder
	changed := false
	for i, rest := 0, raw; rest != "" || i == 0; i++ {
		pair, after, more := strings.Cut(rest, "&")
		name, _, hasValue := strings.Cut(pair, "=")
		if i > 0 {
			b.WriteByte('&')
		}
		if hasValue && secretName(name) {
			b.WriteString(name)
			b.WriteString("=REDACTED")
			changed = true
		} else {
			b.WriteString(pair)
		}
		rest = after
		if !more {
			break
		}
	}
	if !changed {
		return raw
	}
	return b.String()
}

func secretName(name string) bool {
	n := strings.ToLower(PercentDecode(name, true))
	n = strings.Trim(n, "[]")
	for _, s := range secretParams {
		if n == s || strings.HasSuffix(n, s) && len(n) > len(s) && (n[len(n)-len(s)-1] == '_' || n[len(n)-len(s)-1] == '-') {
			return true
		}
	}
	return false
}

// PercentDecode decodes every valid %XX escape and leaves invalid ones as
// they are (PHP's urldecode, Express's lenient decodeURIComponent); with
// plus, '+' is a space as in a form or query. Input without '%' (or '+')
// is returned without allocating.
func PercentDecode(s string, plus bool) string {
	if strings.IndexByte(s, '%') < 0 && (!plus || strings.IndexByte(s, '+') < 0) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		hi, okHi := hexAt(s, i+1)
		lo, okLo := hexAt(s, i+2)
		switch {
		case plus && s[i] == '+':
			b.WriteByte(' ')
		case s[i] == '%' && okHi && okLo:
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// HexValue is the value of a hex digit.
func HexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func hexAt(s string, i int) (byte, bool) {
	if i >= len(s) {
		return 0, false
	}
	return HexValue(s[i])
}

// StripPathParams removes the ";…" parameters of each path segment, as
// Tomcat, Jetty and Spring do before routing ("/login;jsessionid=1" is
// "/login").
func StripPathParams(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for len(p) > 0 {
		seg, rest, slash := strings.Cut(p, "/")
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		b.WriteString(seg)
		if slash {
			b.WriteByte('/')
		}
		p = rest
	}
	return b.String()
}
