package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/redistest"
)

// pki writes a CA, a server certificate for "redis.test" and 127.0.0.1,
// and a client certificate, as PEM files in dir.
func pki(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(n int64, name string, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kder)
	}
	srvCert, srvKey = leaf(2, "redis.test", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = leaf(3, "vigil-client", x509.ExtKeyUsageClientAuth)
	return write("ca.crt", "CERTIFICATE", caDER), srvCert, srvKey, cliCert, cliKey
}

// TestRedisTLSWithClientCertificates: Vigil reaches a Redis that speaks
// only TLS and requires client certificates, verifying the server against
// the configured CA and name; without the client certificate, or trusting
// another CA, it does not.
func TestRedisTLSWithClientCertificates(t *testing.T) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		redistest.Unavailable(t, "no redis-server for the TLS test")
	}
	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := pki(t, dir)
	port := redistest.FreePort(t)
	cmd := exec.Command(path, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "yes", "--save", "", "--appendonly", "no", "--dir", dir)
	out, _ := os.Create(filepath.Join(dir, "redis.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	good := RedisOptions{Addrs: []string{addr}, TLSCA: ca, TLSCert: cliCert, TLSKey: cliKey, TLSServerName: "redis.test"}
	ping := func(o RedisOptions) error {
		c, err := o.Client()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	deadline := time.Now().Add(5 * time.Second)
	for err := ping(good); err != nil; err = ping(good) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("TLS ping: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	noClientCert := good
	noClientCert.TLSCert, noClientCert.TLSKey = "", ""
	if ping(noClientCert) == nil {
		t.Error("connected without the client certificate the server requires")
	}
	otherCA, _, _, _, _ := pki(t, t.TempDir())
	wrongCA := good
	wrongCA.TLSCA = otherCA
	if ping(wrongCA) == nil {
		t.Error("trusted a server signed by another CA")
	}
	wrongName := good
	wrongName.TLSServerName = "other.test"
	if ping(wrongName) == nil {
		t.Error("accepted a server certificate for another name")
	}
	if _, err := (RedisOptions{Addrs: []string{addr}, TLSCert: cliCert}).Client(); err == nil {
		t.Error("a client certificate without its key was accepted")
	}
	if _, err := (RedisOptions{Addrs: []string{addr}, TLSCA: filepath.Join(dir, "missing.crt")}).Client(); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
