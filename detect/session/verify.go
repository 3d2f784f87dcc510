package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwtVerifier checks tokens against the configured keys. It is built once
// per provisioned handler; its JWKS refresher stops with the handler.
type jwtVerifier struct {
	parser   *jwt.Parser
	keys     []staticKey
	jwks     keyfunc.Keyfunc // nil without jwks
	jwksAlgs map[string]bool
	cancel   context.CancelFunc
}

type staticKey struct {
	alg string // JOSE name, e.g. "RS256"
	key any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
}

// maxTokenBytes bounds the tokens examined; longer ones are not verified
// (no legitimate session token is this large, and parsing costs).
const maxTokenBytes = 8 << 10

var (
	errTokenTooLarge = errors.New("token longer than 8 KiB")
	errNoKey         = errors.New("no configured key for the token's algorithm")
)

// newJWTVerifier loads keys and starts the JWKS refresher (bound to ctx).
func newJWTVerifier(ctx context.Context, c *Options) (*jwtVerifier, error) {
	v := &jwtVerifier{jwksAlgs: map[string]bool{}}
	allowed := map[string]bool{}
	for _, k := range c.Keys {
		alg, ok := jwtAlg(k.Alg)
		if !ok {
			return nil, fmt.Errorf("session jwt: unknown algorithm %q", k.Alg)
		}
		var key any
		var err error
		if isHMAC(alg) {
			secret := []byte(k.Secret)
			if len(secret) < minHMACSecret {
				return nil, fmt.Errorf("session jwt: the %s secret is %d bytes; use at least %d random bytes", k.Alg, len(secret), minHMACSecret)
			}
			key = secret
		} else if key, err = loadPublicKey(k.PEMFile, alg); err != nil {
			return nil, err
		}
		v.keys = append(v.keys, staticKey{alg: alg, key: key})
		allowed[alg] = true
	}
	if len(c.JWKS) > 0 {
		urls := make([]string, 0, len(c.JWKS))
		for _, s := range c.JWKS {
			urls = append(urls, s.URL)
			algs := s.Algs
			if len(algs) == 0 {
				algs = asymmetricAlgs
			}
			for _, a := range algs {
				alg, ok := jwtAlg(a)
				if !ok || isHMAC(alg) {
					return nil, fmt.Errorf("session jwt: jwks algorithm %q is not an asymmetric JWS algorithm", a)
				}
				allowed[alg] = true
				v.jwksAlgs[alg] = true
			}
		}
		jctx, cancel := context.WithCancel(ctx)
		v.cancel = cancel
		kf, err := keyfunc.NewDefaultOverrideCtx(jctx, urls, keyfunc.Override{
			Client:           &http.Client{Timeout: 5 * time.Second},
			HTTPTimeout:      5 * time.Second,
			RefreshInterval:  10 * time.Minute,
			RateLimitWaitMax: 3 * time.Second,
			// an unknown key ID (a rotation) refetches at most once a
			// minute: forged kids cannot make Vigil hammer the issuer
			RefreshUnknownKID: rate.NewLimiter(rate.Every(time.Minute), 1),
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					c.Logger.Warn("refreshing JWKS", "url", u, "error", err)
				}
			},
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("session jwt: jwks: %w", err)
		}
		v.jwks = kf
	}
	methods := make([]string, 0, len(allowed))
	for a := range allowed {
		methods = append(methods, a)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods), jwt.WithLeeway(c.Leeway),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(c.Now),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if len(c.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(c.Audience...))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// close stops the JWKS refresher.
func (v *jwtVerifier) close() {
	if v != nil && v.cancel != nil {
		v.cancel()
	}
}

// parse verifies the token's signature, then its registered claims, and only
// then returns the claims: with a nil error when both hold, with the claims
// error when only the signature does, and no claims when it does not. The key is chosen from the header alone (alg and
// kid); an algorithm without a configured key of its own never verifies,
// which rules out alg:none and HMAC signed with a public key.
func (v *jwtVerifier) parse(ctx context.Context, token string) (jwt.MapClaims, error) {
	if len(token) > maxTokenBytes {
		return nil, errTokenTooLarge
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	switch {
	case err == nil:
		return claims, nil
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// the library validates claims only once the signature verified:
		// the token is genuine but not acceptable (expired, not yet valid,
		// wrong audience…), and a revocation must still reach it
		return claims, err
	}
	return nil, err
}

func (v *jwtVerifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var set jwt.VerificationKeySet
	for _, k := range v.keys {
		if k.alg == alg {
			set.Keys = append(set.Keys, k.key)
		}
	}
	if v.jwks != nil && v.jwksAlgs[alg] {
		if _, hasKid := t.Header["kid"].(string); hasKid {
			if k, err := v.jwks.KeyfuncCtx(ctx)(t); err == nil {
				set.Keys = append(set.Keys, k)
			}
		} else if all, err := v.jwks.VerificationKeySet(ctx); err == nil {
			set.Keys = append(set.Keys, all.Keys...)
		}
	}
	switch len(set.Keys) {
	case 0:
		return nil, errNoKey
	case 1:
		return set.Keys[0], nil
	}
	return set, nil
}

// loadPublicKey reads a PEM public key and checks it suits alg.
func loadPublicKey(file, alg string) (any, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("session jwt: reading key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("session jwt: %s holds no PEM block", file)
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("session jwt: %s: PEM block %q is not a public key (private keys are never needed)", file, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("session jwt: parsing %s: %w", file, err)
	}
	if err := keySuits(key, alg); err != nil {
		return nil, fmt.Errorf("session jwt: %s: %w", file, err)
	}
	return key, nil
}

var rsaAlgs = map[string]bool{"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true}

// keySuits checks a public key can verify alg (a JOSE name; anything else,
// "" included, is refused).
func keySuits(key any, alg string) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if !rsaAlgs[alg] {
			return fmt.Errorf("an RSA key cannot verify %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return fmt.Errorf("an ECDSA %s key cannot verify %s", k.Curve.Params().Name, alg)
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return fmt.Errorf("an Ed25519 key cannot verify %s", alg)
		}
	default:
		return fmt.Errorf("unsupported public key type %T", key)
	}
	return nil
}
