package store

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig is the TLS configuration the options ask for, or nil for a
// plain connection. Files are read here, at start, so a missing or
// malformed one is an error naming it rather than a failure at the first
// connection.
func (o RedisOptions) tlsConfig() (*tls.Config, error) {
	if !o.TLS && o.TLSCA == "" && o.TLSCert == "" && o.TLSKey == "" && o.TLSServerName == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.TLSServerName}
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("redis tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis tls ca %s: no PEM certificate in it", o.TLSCA)
		}
		c.RootCAs = pool
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, fmt.Errorf("redis tls: a client certificate needs both cert and key")
	}
	if o.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("redis tls client certificate %s: %w", o.TLSCert, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
