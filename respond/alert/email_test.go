package alert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// testCert makes a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// mailbox is an in-process SMTP server: STARTTLS required before AUTH
// PLAIN, which it checks, and it keeps every message.
type mailbox struct {
	mu   sync.Mutex
	msgs []mailMsg
	addr string
}

type mailMsg struct {
	from string
	to   []string
	data []byte
	tls  bool
}

type smtpSession struct {
	mb     *mailbox
	conn   *smtp.Conn
	authed bool
	cur    mailMsg
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "vigil" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = mailMsg{from: from, tls: isTLS}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, s.cur)
	s.mb.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = mailMsg{} }
func (s *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T, cert tls.Certificate) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{mb: mb, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

func (mb *mailbox) messages() []mailMsg {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]mailMsg(nil), mb.msgs...)
}

// TestEmailOverSTARTTLS: a HIGH alert reaches a real SMTP server over
// STARTTLS with AUTH, as a plain-text + HTML message; MEDIUM does not.
func TestEmailOverSTARTTLS(t *testing.T) {
	cert, pool := testCert(t)
	mb := startSMTP(t, cert)
	em, err := NewEmail(EmailOptions{
		To: []string{"soc@example.com", "oncall@example.com"}, From: "vigil@example.com", SMTP: mb.addr,
		Username: "vigil", Password: "s3cret", TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newCounts()
	d := start(t, Options{Routes: []Route{{Sender: em}}, Hooks: c.hooks()})
	d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7")) // MEDIUM: below email's HIGH
	e := event(detect.CredentialStuffing, "<script>alert(1)</script>", "203.0.113.7")
	d.Submit(e)
	poll.Until(t, 10*time.Second, "mail", func() (bool, string) {
		return len(mb.messages()) >= 1, ""
	})
	settle(t, d)
	msgs := mb.messages()
	if len(msgs) != 1 || !msgs[0].tls || msgs[0].from != "vigil@example.com" || len(msgs[0].to) != 2 {
		t.Fatalf("got %d messages; first: from %q to %v over TLS %v", len(msgs), msgs[0].from, msgs[0].to, msgs[0].tls)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(msgs[0].data)))
	if err != nil {
		t.Fatal(err)
	}
	if subj := m.Header.Get("Subject"); subj != "[Vigil] HIGH CREDENTIAL_STUFFING" {
		t.Fatalf("subject %q", subj)
	}
	if id := m.Header.Get("Message-Id"); id != "<"+e.ID+"@vigil.alerts>" {
		t.Fatalf("Message-Id %q", id)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // multipart decodes quoted-printable
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(b)
	}
	if !strings.Contains(parts["text/plain"], "<script>alert(1)</script>") || !strings.Contains(parts["text/plain"], "203.0.113.7") {
		t.Fatalf("plain part:\n%s", parts["text/plain"])
	}
	if strings.Contains(parts["text/html"], "<script>") || !strings.Contains(parts["text/html"], "&lt;script&gt;") {
		t.Fatalf("html part must escape the user:\n%s", parts["text/html"])
	}
}

// TestEmailRefusesPlainTextServer: STARTTLS is mandatory by default, so a
// server without it (here: one with no TLS config) gets nothing, and
// credentials never cross in clear text.
func TestEmailRefusesPlainTextServer(t *testing.T) {
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{mb: mb, conn: c}, nil
	}))
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	em, err := NewEmail(EmailOptions{To: []string{"soc@example.com"}, From: "vigil@example.com", SMTP: l.Addr().String(), Username: "vigil", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCounts()
	d := start(t, Options{Routes: []Route{{Sender: em, Policy: Policy{MaxAge: 200 * time.Millisecond}}}, Hooks: c.hooks()})
	d.Submit(event(detect.CredentialStuffing, "bob", "203.0.113.7"))
	poll.Until(t, 5*time.Second, "attempt failed", func() (bool, string) { return atLeast(1)(c.get(c.failed, "email")) })
	if n := len(mb.messages()); n != 0 {
		t.Fatalf("a server without STARTTLS received %d messages", n)
	}
	for _, bad := range []EmailOptions{
		{From: "v@x.org", SMTP: "h:25"},
		{To: []string{"not an address"}, From: "v@x.org", SMTP: "h:25"},
		{To: []string{"a@x.org"}, From: "v@x.org", SMTP: "h"},
		{To: []string{"a@x.org"}, From: "v@x.org", SMTP: "h:25", TLS: "maybe"},
		{To: []string{"a@x.org"}, From: "v@x.org", SMTP: "h:25", TLS: "none", Username: "u"},
	} {
		if _, err := NewEmail(bad); err == nil {
			t.Errorf("NewEmail(%+v) accepted", bad)
		}
	}
}
