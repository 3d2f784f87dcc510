package caddymodule

import (
	"net/http"
	"strings"
)

// bearerToken takes the token out of an Authorization-style header value:
// "Bearer <token>" (scheme case-insensitive), or the bare token for a
// custom header. It returns "" for anything else, e.g. Basic credentials.
func bearerToken(v string, custom bool) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	if custom && !strings.ContainsAny(v, " \t") {
		return v
	}
	return ""
}

// cookieValue finds a cookie without parsing every cookie of the request
// into a slice (http.Request.Cookie allocates for each). Surrounding double
// quotes are removed as net/http does. A cookie sent twice is ambiguous
// (the app may read either): then it reports ok=false.
func cookieValue(h http.Header, name string) (string, bool) {
	found, val := false, ""
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if found {
				return "", false
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			found, val = true, v
		}
	}
	return val, found
}

// extractToken returns the session token of a request, or "".
func (s *sessionGuard) extractToken(r *http.Request) string {
	if s.cookie != "" {
		v, _ := cookieValue(r.Header, s.cookie)
		return v
	}
	return bearerToken(r.Header.Get(s.header), s.customHeader)
}
