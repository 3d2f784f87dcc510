package session

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// accessTokenParam is the parameter OAuth 2.0 bearer tokens travel in when
// not in a header (RFC 6750 sections 2.2 and 2.3).
const accessTokenParam = "access_token"

// maxFormScan bounds the form body read for an access_token; a larger body
// is forwarded unexamined (a known limit: see the README).
const maxFormScan = 64 << 10

// extractOthers collects the tokens the request carries outside the place
// configured for identity, wherever an app might read one: the
// Authorization header, cookies holding a JWT, and access_token in the query
// or a form body. Tokens also found in the configured place are left out.
func (d *Detector) extractOthers(r *http.Request, t, configured *tokenSet) {
	var found tokenSet
	if d.opt.Cookie != "" || d.customHeader {
		for _, v := range r.Header["Authorization"] {
			bearerTokens(v, false, &found)
		}
	}
	jwtCookies(r.Header, d.opt.Cookie, &found)
	if strings.Contains(r.URL.RawQuery, accessTokenParam) {
		// a malformed pair elsewhere does not hide the token: ParseQuery
		// keeps every pair it could read
		q, _ := url.ParseQuery(r.URL.RawQuery)
		for _, v := range q[accessTokenParam] {
			found.add(v)
		}
	}
	formTokens(r, &found)
	for _, tok := range found.tok[:found.n] {
		if !configured.has(tok) {
			t.add(tok)
		}
	}
	t.overflow = t.overflow || found.overflow
}

// has reports whether the set holds tok (already canonical).
func (t *tokenSet) has(tok string) bool {
	for _, have := range t.tok[:t.n] {
		if have == tok {
			return true
		}
	}
	return false
}

// jwtCookies adds every cookie value that holds a JWT, whatever the
// cookie's name, except the configured session cookie (read as identity).
func jwtCookies(h http.Header, skip string, t *tokenSet) {
	for _, line := range h["Cookie"] {
		if !strings.Contains(line, "eyJ") {
			continue // every JWT starts with the encoding of `{"`
		}
		for _, c := range strings.FieldsFunc(line, func(r rune) bool { return r == ';' || r == ',' }) {
			name, v, ok := strings.Cut(c, "=")
			if !ok || strings.TrimSpace(name) == skip && skip != "" {
				continue
			}
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if looksLikeJWT(v) {
				t.add(v)
			}
		}
	}
}

// looksLikeJWT: three dot-separated parts, the header part starting `eyJ`
// (possibly percent-encoded, as a cookie may carry it).
func looksLikeJWT(v string) bool {
	v = canonicalToken(v)
	return strings.HasPrefix(v, "eyJ") && strings.Count(v, ".") == 2
}

// formTokens adds the access_token values of an urlencoded form body (the
// body is replayed to the upstream untouched).
func formTokens(r *http.Request, t *tokenSet) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxFormScan))
	r.Body = replay{Reader: io.MultiReader(bytes.NewReader(raw), r.Body), Closer: r.Body}
	if !bytes.Contains(raw, []byte(accessTokenParam)) {
		return
	}
	q, _ := url.ParseQuery(string(raw))
	for _, v := range q[accessTokenParam] {
		t.add(v)
	}
}

// replay serves the bytes already read, then the rest of the body.
type replay struct {
	io.Reader
	io.Closer
}
