package caddymodule

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilsec/vigil/detect"
)

// identity is what a verified token says, computed once per token and then
// served from the verification cache.
type identity struct {
	user    string
	userKey string // detect.AccountKey(user): revocation lookups hash nothing per request
	jti     string
	roles   []string
	// claimRoles holds the roles of other claims that restrict rules read
	claimRoles map[string][]string
	issued     time.Time // iat; zero when absent
	expires    time.Time // exp

	// refusedOnce makes the first refusal of a revoked token (per process)
	// the one that records SESSION_REVOKED, not every retry.
	refusedOnce atomic.Bool
}

var (
	errNoUserClaim = errors.New("verified token carries no usable user claim")
	errLifetime    = errors.New("token lifetime exceeds max_lifetime")
)

// maxRoles bounds the roles kept from one token.
const maxRoles = 64

// maxJTIBytes bounds a token ID: longer ones are neither kept from a token
// nor accepted by the admin API, so every revocation it accepts can match.
const maxJTIBytes = 1024

// newIdentity reads a verified token's claims. The user must be a
// non-empty string of at most 1 KiB without control characters (it becomes
// the {http.vigil.user} placeholder, often a request header upstream).
func newIdentity(claims jwt.MapClaims, userClaim, rolesClaim string, extraClaims []string, maxLifetime time.Duration, now time.Time) (*identity, error) {
	user, _ := claimAt(claims, userClaim).(string)
	if !cleanUser(user) {
		return nil, errNoUserClaim
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, errors.New("token has no usable exp")
	}
	id := &identity{user: user, userKey: detect.AccountKey(user), expires: exp.Time}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		id.issued = iat.Time
	}
	// revocations are kept for revocationLifetime: a token that lives
	// longer could outlast its own revocation. The lifetime counts from
	// iat's whole second, as revocations compare whole seconds (the JWT
	// library truncates to seconds today; this does not depend on it).
	from := id.issued.Truncate(time.Second)
	if from.IsZero() {
		from = now
	}
	if id.expires.Sub(from) > maxLifetime {
		return nil, errLifetime
	}
	if jti, ok := claims["jti"].(string); ok && len(jti) <= maxJTIBytes {
		id.jti = jti
	}
	id.roles = rolesOf(claimAt(claims, rolesClaim))
	for _, c := range extraClaims {
		if id.claimRoles == nil {
			id.claimRoles = map[string][]string{}
		}
		id.claimRoles[c] = rolesOf(claimAt(claims, c))
	}
	return id, nil
}

// claimAt finds a claim by name, or by a dotted path into nested objects
// ("realm_access.roles") when no claim has the whole name.
func claimAt(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// rolesOf accepts a JSON array of strings or one space-separated string
// (the OAuth "scope" style).
func rolesOf(v any) []string {
	var out []string
	switch r := v.(type) {
	case string:
		out = strings.Fields(r)
	case []any:
		for _, x := range r {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	if len(out) > maxRoles {
		out = out[:maxRoles]
	}
	return out
}

// common is the identity of a request carrying two verified tokens of the
// same user (the app may read either): the roles both grant, no jti.
func (id *identity) common(o *identity) *identity {
	c := &identity{user: id.user, userKey: id.userKey, issued: id.issued, expires: id.expires,
		roles: intersect(id.roles, o.roles)}
	if id.claimRoles != nil {
		c.claimRoles = make(map[string][]string, len(id.claimRoles))
		for k, v := range id.claimRoles {
			c.claimRoles[k] = intersect(v, o.claimRoles[k])
		}
	}
	return c
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

func cleanUser(u string) bool {
	if u == "" || len(u) > detect.MaxUsernameBytes || !utf8.ValidString(u) {
		return false
	}
	for _, r := range u {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
