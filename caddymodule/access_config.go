package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/detect/access"
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

// defaultViolations: this many permission violations by one user or one
// address inside the window make the next ones HIGH.
var defaultViolations = WindowPolicy{Count: 5, Within: caddy.Duration(10 * time.Minute)}

func (r *RestrictRule) validate() error {
	if !strings.HasPrefix(r.Path, "/") && r.Path != "*" {
		return fmt.Errorf("restrict: path %q must start with /", r.Path)
	}
	if len(r.Roles) == 0 {
		return fmt.Errorf("restrict %s: at least one role is required", r.Path)
	}
	return nil
}

// compileRestrictions turns the rules into the access detector's, reading
// a rule's roles from the session's own roles when its claim is the roles
// claim.
func compileRestrictions(rules []RestrictRule, rolesClaim string) ([]access.Rule, error) {
	out := make([]access.Rule, 0, len(rules))
	for _, r := range rules {
		m := caddyhttp.MatchPath{r.Path}
		if base, ok := strings.CutSuffix(r.Path, "/*"); ok && base != "" {
			// "/admin/*" guards "/admin" itself too: the app serves both
			m = append(m, base)
		}
		pm, err := newPathMatcher(m)
		if err != nil {
			return nil, fmt.Errorf("restrict %s: %w", r.Path, err)
		}
		claim := r.Claim
		if claim == rolesClaim {
			claim = ""
		}
		out = append(out, access.Rule{Match: pm, Path: r.Path, Roles: r.Roles, Claim: claim})
	}
	return out, nil
}

// ruleClaims lists the extra claims the rules read roles from, so that a
// token's verification extracts them once. A rule naming the roles claim
// itself reads the session's roles.
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

// pathMatcher is Caddy's path matcher for the detectors (honeypots,
// restrict rules), which never import Caddy.
type pathMatcher struct{ m caddyhttp.MatchPath }

func newPathMatcher(m caddyhttp.MatchPath) (pathMatcher, error) {
	if err := m.Provision(caddy.Context{}); err != nil {
		return pathMatcher{}, err
	}
	return pathMatcher{m}, nil
}

// Match implements the detectors' Matcher. Caddy's matcher reads a
// replacer from the context, which Caddy always sets; a request built
// outside Caddy (tests, benchmarks) gets one.
func (p pathMatcher) Match(r *http.Request) bool {
	if r.Context().Value(caddy.ReplacerCtxKey) == nil {
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	}
	return p.m.Match(r)
}
