package session

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// TestKeySuits: a key verifies only the algorithms of its own kind and
// size; an empty or unknown algorithm never.
func TestKeySuits(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		key  any
		alg  string
		fits bool
	}{
		{&rk.PublicKey, "RS256", true}, {&rk.PublicKey, "PS512", true}, {&rk.PublicKey, "", false},
		{&rk.PublicKey, "ES256", false}, {&rk.PublicKey, "HS256", false},
		{&ek.PublicKey, "ES256", true}, {&ek.PublicKey, "ES384", false}, {&ek.PublicKey, "", false},
		{edPub, "EdDSA", true}, {edPub, "ES256", false},
	} {
		if err := keySuits(c.key, c.alg); (err == nil) != c.fits {
			t.Errorf("%T for %q: %v, want fits=%v", c.key, c.alg, err, c.fits)
		}
	}
}
