package login

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

// Route describes one login endpoint of the protected app.
type Route struct {
	// Method is the HTTP method of login submissions, e.g. "POST".
	Method string `json:"method"`
	// Path is the login path. A path with `*` is a glob (path.Match);
	// matching is case-insensitive and ignores a trailing slash.
	Path string `json:"path"`
	// User says where the username is.
	User UserSource `json:"user"`
	// Success says how to recognise a successful login in the upstream's
	// answer. Without it, any 2xx or 3xx answer is a success.
	Success *SuccessRule `json:"success,omitempty"`
	// Unreadable says what happens to a login whose account Vigil cannot
	// read the way the app might (a Content-Encoding or character set it
	// does not decode, a malformed or oversized body, two accounts named):
	// "refuse" (default: 400, 413 or 415, counted against the address) or
	// "forward" (passed to the app, counted against the address only, so a
	// locked account may be guessed at through it: only for apps known to
	// read nothing Vigil cannot).
	Unreadable string `json:"unreadable,omitempty"`
}

// UserSource names the field that carries the username.
type UserSource struct {
	// From is "form" (urlencoded or multipart), "json" or "header".
	From string `json:"from"`
	// Name is the form field, the dotted JSON path (e.g. "user.name") or
	// the header name.
	Name string `json:"name"`
}

// SuccessRule recognises a successful login. Each configured test must hold;
// anything else is a failure.
type SuccessRule struct {
	// Status lists the status codes that mean success.
	Status []int `json:"status,omitempty"`
	// Header, when set, must be present in the answer with this value
	// (an empty value means any).
	Header *HeaderMatch `json:"header,omitempty"`
	// RedirectNot means success is a redirect (3xx) whose Location does not
	// start with this prefix (e.g. "/login", where failures send users back).
	RedirectNot string `json:"redirect_not,omitempty"`
}

// HeaderMatch is a response header name and expected value.
type HeaderMatch struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Validate checks the route for values that cannot work.
func (l *Route) Validate() error {
	if l.Method == "" || strings.ContainsAny(l.Method, " \t/") {
		return fmt.Errorf("login: invalid method %q", l.Method)
	}
	if !strings.HasPrefix(l.Path, "/") {
		return fmt.Errorf("login: path %q must start with /", l.Path)
	}
	if _, err := path.Match(l.Path, "/"); err != nil {
		return fmt.Errorf("login: bad path pattern %q: %w", l.Path, err)
	}
	switch l.User.From {
	case "form", "json", "header":
	default:
		return fmt.Errorf("login %s: user source %q is not form, json or header", l.Path, l.User.From)
	}
	if l.User.Name == "" {
		return fmt.Errorf("login %s: user field name is empty", l.Path)
	}
	if l.Unreadable != "" && l.Unreadable != "refuse" && l.Unreadable != "forward" {
		return fmt.Errorf("login %s: unreadable %q is not refuse or forward", l.Path, l.Unreadable)
	}
	if s := l.Success; s != nil {
		for _, c := range s.Status {
			if c < 100 || c > 599 {
				return fmt.Errorf("login %s: success status %d is not an HTTP status", l.Path, c)
			}
		}
		if s.Header != nil && s.Header.Name == "" {
			return fmt.Errorf("login %s: success header needs a name", l.Path)
		}
	}
	return nil
}

// Matches reports whether r is on this login route's path, whatever its
// method: Go's FormValue, Rails params, Servlet getParameter and Flask
// request.values read credentials from any method, so a PUT, a PATCH or a
// GET with a query is a login too (the login check then tells an attempt
// from a page view). ";" path parameters are stripped, as Tomcat, Jetty and
// Spring strip them before routing.
func (l *Route) Matches(r *http.Request) bool {
	p := r.URL.Path
	if strings.IndexByte(p, ';') >= 0 {
		p = detect.StripPathParams(p)
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = strings.TrimSuffix(p, "/")
	}
	if strings.Contains(l.Path, "*") {
		ok, _ := path.Match(strings.ToLower(l.Path), strings.ToLower(path.Clean(p)))
		return ok
	}
	return strings.EqualFold(p, l.Path) || strings.EqualFold(path.Clean(p), l.Path)
}

// Succeeded applies the success rule to the upstream's answer.
func (l *Route) Succeeded(status int, h http.Header) bool {
	s := l.Success
	if s == nil {
		return status >= 200 && status < 400
	}
	if len(s.Status) > 0 {
		found := false
		for _, c := range s.Status {
			found = found || c == status
		}
		if !found {
			return false
		}
	}
	if s.Header != nil {
		v := h.Get(s.Header.Name)
		if v == "" || (s.Header.Value != "" && v != s.Header.Value) {
			return false
		}
	}
	if s.RedirectNot != "" {
		if status < 300 || status > 399 {
			return false
		}
		loc := h.Get("Location")
		if loc == "" || locationHasPrefix(loc, s.RedirectNot) {
			return false
		}
	}
	return true
}

// locationHasPrefix compares the path of a Location (relative or absolute)
// with prefix, so "https://app/login?e=1" and "/login?e=1" both count.
func locationHasPrefix(loc, prefix string) bool {
	if i := strings.Index(loc, "://"); i >= 0 {
		rest := loc[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			loc = rest[j:]
		} else {
			loc = "/"
		}
	}
	return strings.HasPrefix(strings.ToLower(loc), strings.ToLower(prefix))
}
