package session

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Options configure a JWT session Detector. Placeholders in secrets and
// paths are already resolved.
type Options struct {
	Keys     []Key
	JWKS     []JWKSSource
	Issuer   string
	Audience []string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// MaxLifetime is the longest lifetime (exp - iat) a token may have.
	MaxLifetime time.Duration
	CacheSize   int
	// Header carries the token (canonical form; "Authorization" by
	// default), unless Cookie is set.
	Header string
	Cookie string
	// UserClaim and RolesClaim name the user and the roles; ExtraClaims
	// are the other claims restrict rules read roles from.
	UserClaim, RolesClaim string
	ExtraClaims           []string
	Require               bool
	MonitorOnly           bool
	Responder             Responder
	Hooks                 Hooks
	Logger                *slog.Logger
	Now                   func() time.Time
}

// Key is one verification key: an HMAC secret or a public key in a PEM file.
type Key struct {
	Alg     string // any case: hs256 … eddsa
	Secret  string
	PEMFile string
}

// JWKSSource is a JWK Set URL and the asymmetric algorithms its keys may be
// used with (default: all of rs*, ps*, es* and eddsa).
type JWKSSource struct {
	URL  string
	Algs []string
}

// Defaults of the options a site leaves out.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultMaxLifetime = 24 * time.Hour
	DefaultCacheSize   = 10000
	minHMACSecret      = 32
)

// jwtAlgs maps the configuration's names to the JOSE names.
var jwtAlgs = map[string]string{
	"hs256": "HS256", "hs384": "HS384", "hs512": "HS512",
	"rs256": "RS256", "rs384": "RS384", "rs512": "RS512",
	"ps256": "PS256", "ps384": "PS384", "ps512": "PS512",
	"es256": "ES256", "es384": "ES384", "es512": "ES512",
	"eddsa": "EdDSA",
}

// jwtAlg is the JOSE name of a configured algorithm, whatever its case
// ("RS256" and "rs256" alike: JSON configs are written by hand too).
func jwtAlg(name string) (string, bool) {
	alg, ok := jwtAlgs[strings.ToLower(name)]
	return alg, ok
}

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// asymmetricAlgs is the JWKS default allowlist: never an HMAC algorithm,
// whose "key" would be public.
var asymmetricAlgs = []string{"rs256", "rs384", "rs512", "ps256", "ps384", "ps512", "es256", "es384", "es512", "eddsa"}

// ValidateKeys checks keys and JWK Sets before any secret is resolved:
// known algorithms, a secret for HMAC and a PEM file for the others, http(s)
// JWKS URLs with asymmetric algorithms only.
func ValidateKeys(keys []Key, jwks []JWKSSource) error {
	if len(keys) == 0 && len(jwks) == 0 {
		return fmt.Errorf("session jwt: at least one key or jwks is required")
	}
	for _, k := range keys {
		alg, ok := jwtAlg(k.Alg)
		switch {
		case !ok:
			return fmt.Errorf("session jwt: unknown algorithm %q", k.Alg)
		case isHMAC(alg) && (k.Secret == "" || k.PEMFile != ""):
			return fmt.Errorf("session jwt: key %s takes a secret", k.Alg)
		case !isHMAC(alg) && (k.PEMFile == "" || k.Secret != ""):
			return fmt.Errorf("session jwt: key %s takes a PEM file", k.Alg)
		}
	}
	for _, s := range jwks {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("session jwt: jwks %q is not an http(s) URL", s.URL)
		}
		for _, a := range s.Algs {
			if alg, ok := jwtAlg(a); !ok || isHMAC(alg) {
				return fmt.Errorf("session jwt: jwks algorithm %q is not an asymmetric JWS algorithm", a)
			}
		}
	}
	return nil
}

// RevocationLifetime is how long a revocation must last so that no token it
// covers is accepted after it ends. A token is accepted only while
// now < exp + leeway, and only when exp − ⌊iat⌋ ≤ max_lifetime + leeway; a
// revocation made at C covers tokens with ⌊iat⌋ ≤ ⌊C⌋. So a covered token
// stops being accepted before C + max_lifetime + 2×leeway.
func RevocationLifetime(maxLifetime, leeway time.Duration) time.Duration {
	return maxLifetime + 2*leeway
}

// DefaultRevocationLifetime is RevocationLifetime of the defaults: how long
// revocations last when no site verifies sessions.
var DefaultRevocationLifetime = RevocationLifetime(DefaultMaxLifetime, DefaultLeeway)

// KeyAlg reports whether name is a known algorithm (any case) and whether
// it is an HMAC one, whose key is a secret rather than a PEM file.
func KeyAlg(name string) (known, hmac bool) {
	alg, ok := jwtAlg(name)
	return ok, ok && isHMAC(alg)
}
