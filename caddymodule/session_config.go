package caddymodule

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// SessionConfig says how requests prove who they come from. Only JWT
// sessions exist today; the nesting leaves room for others.
type SessionConfig struct {
	JWT *JWTConfig `json:"jwt,omitempty"`
}

// JWTConfig verifies JSON Web Tokens carried in a header or a cookie. Only
// a token whose signature verifies with a configured key, under an allowed
// algorithm, inside its validity period and for the configured issuer and
// audience identifies anyone.
type JWTConfig struct {
	// Header carries the token ("Bearer " prefix stripped). Default
	// "Authorization" unless Cookie is set.
	Header string `json:"header,omitempty"`
	// Cookie carries the token instead of a header. A revoked session's
	// cookie is cleared (Path=/) in the 401 answer.
	Cookie string `json:"cookie,omitempty"`
	// Keys verify tokens. Each key allows exactly its own algorithm.
	Keys []JWTKey `json:"keys,omitempty"`
	// JWKS are JWK Set URLs, fetched at start, refreshed every 10 minutes
	// and when a token names an unknown key ID (at most once a minute).
	JWKS []JWKSSource `json:"jwks,omitempty"`
	// Issuer, when set, must equal the token's "iss".
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must share a value with the token's "aud".
	Audience []string `json:"audience,omitempty"`
	// Leeway tolerates clock skew on exp, nbf and iat. Default 30s.
	Leeway *caddy.Duration `json:"leeway,omitempty"`
	// UserClaim names the user (a dotted path into nested claims is
	// allowed). Default "sub".
	UserClaim string `json:"user_claim,omitempty"`
	// RolesClaim holds the roles: a JSON array of strings or a
	// space-separated string. Default "roles".
	RolesClaim string `json:"roles_claim,omitempty"`
	// Require refuses (401) requests without a valid session, except on
	// the site's login routes.
	Require bool `json:"require,omitempty"`
	// MaxLifetime is the longest lifetime (exp - iat) a token may have;
	// longer-lived tokens are not accepted, because revocations are kept
	// this long. Default 24h.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// CacheSize bounds the verification cache (entries). Default 10000.
	CacheSize int `json:"cache_size,omitempty"`
}

// JWTKey is one verification key: an HMAC secret or a public key in a PEM
// file (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or a "CERTIFICATE").
type JWTKey struct {
	// Alg is the algorithm, in any case: hs256, hs384, hs512, rs256,
	// rs384, rs512, ps256, ps384, ps512, es256, es384, es512 or eddsa.
	Alg string `json:"alg"`
	// Secret is the raw HMAC secret (placeholders such as {env.JWT_SECRET}
	// are replaced at provisioning); at least 32 bytes.
	Secret string `json:"secret,omitempty"`
	// PEMFile is the path of the public key for the other algorithms.
	PEMFile string `json:"pem_file,omitempty"`
}

// JWKSSource is a JWK Set URL and the asymmetric algorithms its keys may
// be used with (default: all of rs*, ps*, es* and eddsa).
type JWKSSource struct {
	URL  string   `json:"url"`
	Algs []string `json:"algs,omitempty"`
}

const (
	defaultLeeway      = 30 * time.Second
	defaultMaxLifetime = 24 * time.Hour
	defaultCacheSize   = 10000
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

func (c *JWTConfig) validate() error {
	if c.Header != "" && c.Cookie != "" {
		return fmt.Errorf("session jwt: give a header or a cookie, not both")
	}
	if len(c.Keys) == 0 && len(c.JWKS) == 0 {
		return fmt.Errorf("session jwt: at least one key or jwks is required")
	}
	for _, k := range c.Keys {
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
	for _, s := range c.JWKS {
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
	if c.Leeway != nil && (*c.Leeway < 0 || time.Duration(*c.Leeway) > 10*time.Minute) {
		return fmt.Errorf("session jwt: leeway must be between 0 and 10m")
	}
	if c.MaxLifetime < 0 || c.CacheSize < 0 {
		return fmt.Errorf("session jwt: max_lifetime and cache_size must not be negative")
	}
	return nil
}

func (c *JWTConfig) leeway() time.Duration {
	if c.Leeway == nil {
		return defaultLeeway
	}
	return time.Duration(*c.Leeway)
}

func (c *JWTConfig) maxLifetime() time.Duration {
	if c.MaxLifetime == 0 {
		return defaultMaxLifetime
	}
	return time.Duration(c.MaxLifetime)
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
