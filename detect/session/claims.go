package session

import (
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilsec/vigil/detect"
)

var (
	errNoUserClaim = errors.New("verified token carries no usable user claim")
	errLifetime    = errors.New("token lifetime exceeds max_lifetime")
)

// maxRoles bounds the roles kept from one token.
const maxRoles = 64

// MaxJTIBytes bounds a token ID: longer ones are neither kept from a token
// nor accepted by the admin API, so every revocation it accepts can match.
const MaxJTIBytes = 1024

// newIdentity reads a verified token's claims. The user must be a
// non-empty string of at most 1 KiB without control characters (it becomes
// the {http.vigil.user} placeholder, often a request header upstream).
func newIdentity(claims jwt.MapClaims, c claimNames, maxLifetime time.Duration, now time.Time) (*detect.Identity, error) {
	user, _ := claimAt(claims, c.user).(string)
	if !cleanUser(user) {
		return nil, errNoUserClaim
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, errors.New("token has no usable exp")
	}
	id := &detect.Identity{User: user, UserKey: detect.AccountKey(user), Expires: exp.Time}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		id.Issued = iat.Time
	}
	// revocations are kept for revocationLifetime: a token that lives
	// longer could outlast its own revocation. The lifetime counts from
	// iat's whole second, as revocations compare whole seconds (the JWT
	// library truncates to seconds today; this does not depend on it).
	from := id.Issued.Truncate(time.Second)
	if from.IsZero() {
		from = now
	}
	if id.Expires.Sub(from) > maxLifetime {
		return nil, errLifetime
	}
	if jti, ok := claims["jti"].(string); ok && len(jti) <= MaxJTIBytes {
		id.JTI = jti
	}
	id.Roles = rolesOf(claimAt(claims, c.roles))
	for _, name := range c.extra {
		if id.ClaimRoles == nil {
			id.ClaimRoles = map[string][]string{}
		}
		id.ClaimRoles[name] = rolesOf(claimAt(claims, name))
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

// claimNames are the claims a site reads: the user, the roles, and the
// other claims its restrict rules read roles from.
type claimNames struct {
	user, roles string
	extra       []string
}

// signedIdentity is what a token whose signature verified but which is not
// accepted (expired, beyond max_lifetime, not yet valid…) still says: enough
// to find a revocation that names it, never enough to identify anyone.
func signedIdentity(claims jwt.MapClaims, c claimNames) *detect.Identity {
	id := &detect.Identity{}
	if user, _ := claimAt(claims, c.user).(string); cleanUser(user) {
		id.User, id.UserKey = user, detect.AccountKey(user)
	}
	if jti, ok := claims["jti"].(string); ok && len(jti) <= MaxJTIBytes {
		id.JTI = jti
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		id.Issued = iat.Time
	}
	return id
}
