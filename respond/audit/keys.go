package audit

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadPrivateKey reads the checkpoint signing key: an Ed25519 key in a
// PKCS#8 PEM file, as `openssl genpkey -algorithm ed25519` writes it.
// Errors name the file, since operators meet them at start-up.
func LoadPrivateKey(pemPath string) (ed25519.PrivateKey, error) {
	der, err := readPEM(pemPath, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("audit sign key %s: not a PKCS#8 private key: %w", pemPath, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit sign key %s: a %T, want an Ed25519 key (openssl genpkey -algorithm ed25519)", pemPath, k)
	}
	return priv, nil
}

// LoadPublicKey reads the key checkpoints are verified with: an Ed25519
// key in a PKIX PEM file, as `openssl pkey -pubout` writes it.
func LoadPublicKey(pemPath string) (ed25519.PublicKey, error) {
	der, err := readPEM(pemPath, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("audit public key %s: not a PKIX public key: %w", pemPath, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key %s: a %T, want an Ed25519 key", pemPath, k)
	}
	return pub, nil
}

// readPEM returns the DER bytes of the first PEM block of the wanted type.
func readPEM(path, want string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("audit key %s: no PEM block found", path)
	}
	if block.Type != want {
		return nil, fmt.Errorf("audit key %s: a %q PEM block, want %q", path, block.Type, want)
	}
	return block.Bytes, nil
}
