package caddymodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/vigilsec/vigil/detect/session"
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

// validate checks the block before any secret is resolved.
func (c *JWTConfig) validate() error {
	if c.Header != "" && c.Cookie != "" {
		return fmt.Errorf("session jwt: give a header or a cookie, not both")
	}
	if err := session.ValidateKeys(c.keys(), c.jwks()); err != nil {
		return err
	}
	if c.Leeway != nil && (*c.Leeway < 0 || time.Duration(*c.Leeway) > 10*time.Minute) {
		return fmt.Errorf("session jwt: leeway must be between 0 and 10m")
	}
	if c.MaxLifetime < 0 || c.CacheSize < 0 {
		return fmt.Errorf("session jwt: max_lifetime and cache_size must not be negative")
	}
	return nil
}

func (c *JWTConfig) keys() []session.Key {
	out := make([]session.Key, len(c.Keys))
	for i, k := range c.Keys {
		out[i] = session.Key{Alg: k.Alg, Secret: k.Secret, PEMFile: k.PEMFile}
	}
	return out
}

func (c *JWTConfig) jwks() []session.JWKSSource {
	out := make([]session.JWKSSource, len(c.JWKS))
	for i, s := range c.JWKS {
		out[i] = session.JWKSSource{URL: s.URL, Algs: s.Algs}
	}
	return out
}

// options is the session detector's form of the block, with the
// placeholders of secrets and key paths ({env.JWT_SECRET}) replaced.
func (c *JWTConfig) options() (session.Options, error) {
	repl := caddy.NewReplacer()
	keys := c.keys()
	for i := range keys {
		var err error
		what := "session jwt key " + strings.ToLower(keys[i].Alg)
		if keys[i].Secret, err = resolve(repl, what, keys[i].Secret); err != nil {
			return session.Options{}, err
		}
		if keys[i].PEMFile, err = resolve(repl, what, keys[i].PEMFile); err != nil {
			return session.Options{}, err
		}
	}
	o := session.Options{
		Keys: keys, JWKS: c.jwks(), Issuer: c.Issuer, Audience: c.Audience,
		Leeway: session.DefaultLeeway, MaxLifetime: session.DefaultMaxLifetime, CacheSize: c.CacheSize,
		Header: c.Header, Cookie: c.Cookie, UserClaim: c.UserClaim, RolesClaim: c.RolesClaim, Require: c.Require,
	}
	if c.Leeway != nil {
		o.Leeway = time.Duration(*c.Leeway)
	}
	if c.MaxLifetime != 0 {
		o.MaxLifetime = time.Duration(c.MaxLifetime)
	}
	return o, nil
}
