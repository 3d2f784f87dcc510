package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// RestrictRule lets only verified sessions holding one of Roles reach the
// paths matching Path; every other request gets 403 at the gateway and a
// PERMISSION_VIOLATION event.
type RestrictRule struct {
	// Path is a Caddy path pattern ("/admin/*", "/api/*/delete"): matched
	// case-insensitively on the cleaned path, as Caddy's path matcher does,
	// so "//Admin/./x" cannot slip past "/admin/*".
	Path string `json:"path"`
	// Roles are accepted roles; one is enough.
	Roles []string `json:"roles"`
	// Claim reads the roles from this claim instead of the session's
	// roles_claim (a dotted path is allowed).
	Claim string `json:"claim,omitempty"`
}

// WindowPolicy is "<count> within <dur>".
type WindowPolicy struct {
	Count  int            `json:"count"`
	Within caddy.Duration `json:"within"`
}

// restriction is a RestrictRule ready to match.
type restriction struct {
	RestrictRule
	match caddyhttp.MatchPath
}

func (r *RestrictRule) validate() error {
	if !strings.HasPrefix(r.Path, "/") && r.Path != "*" {
		return fmt.Errorf("restrict: path %q must start with /", r.Path)
	}
	if len(r.Roles) == 0 {
		return fmt.Errorf("restrict %s: at least one role is required", r.Path)
	}
	return nil
}

func compileRestrictions(rules []RestrictRule) ([]restriction, error) {
	out := make([]restriction, 0, len(rules))
	for _, r := range rules {
		m := caddyhttp.MatchPath{r.Path}
		if base, ok := strings.CutSuffix(r.Path, "/*"); ok && base != "" {
			// "/admin/*" guards "/admin" itself too: the app serves both
			m = append(m, base)
		}
		if err := m.Provision(caddy.Context{}); err != nil {
			return nil, fmt.Errorf("restrict %s: %w", r.Path, err)
		}
		out = append(out, restriction{RestrictRule: r, match: m})
	}
	return out, nil
}

// violatedRestriction returns the first rule that matches r and that id
// (nil: no session) does not satisfy. Every matching rule must hold.
func (h *Handler) violatedRestriction(r *http.Request, id *identity) *restriction {
	if strings.IndexByte(r.URL.Path, ';') >= 0 {
		r = withoutPathParams(r)
	}
	for i := range h.restrictions {
		rule := &h.restrictions[i]
		if !rule.match.Match(r) {
			continue
		}
		if id == nil || !id.holds(rule) {
			return rule
		}
	}
	return nil
}

// holds reports whether the identity has one of the rule's roles, read from
// the rule's claim or the session's roles claim.
func (id *identity) holds(rule *restriction) bool {
	roles := id.roles
	if rule.Claim != "" {
		roles = id.claimRoles[rule.Claim]
	}
	for _, want := range rule.Roles {
		for _, have := range roles {
			if have == want {
				return true
			}
		}
	}
	return false
}

// ruleClaims lists the extra claims the rules read roles from, so that a
// token's verification extracts them once. A rule naming the roles claim
// itself reads identity.roles (provision clears its Claim).
func ruleClaims(rules []RestrictRule, rolesClaim string) []string {
	var out []string
	seen := map[string]bool{rolesClaim: true}
	for _, r := range rules {
		if r.Claim != "" && !seen[r.Claim] {
			seen[r.Claim] = true
			out = append(out, r.Claim)
		}
	}
	return out
}

// withoutPathParams is r with the ";…" parameters of each path segment
// removed, as Tomcat, Jetty and Spring do before routing: otherwise
// "/admin;jsessionid=1/x" would miss "/admin/*" while the app serves
// /admin/x. (The decoded path is used, so an encoded "%3B" is stripped too:
// the error is on the restrictive side.)
func withoutPathParams(r *http.Request) *http.Request {
	p := r.URL.Path
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
	u := *r.URL
	u.Path, u.RawPath = b.String(), ""
	r2 := *r
	r2.URL = &u
	return &r2
}
