package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// EmailOptions configure the SMTP channel.
type EmailOptions struct {
	To       []string
	From     string
	SMTP     string // host:port
	Username string // AUTH when set (PLAIN or LOGIN, whichever the server offers)
	Password string
	// TLS is "starttls" (default: STARTTLS required), "tls" (implicit TLS,
	// port 465 style) or "none" (plain text, for a local relay only).
	TLS string
	// TLSConfig overrides the TLS settings (tests trust their own CA here).
	TLSConfig *tls.Config
}

// Email sends a plain-text + HTML message per alert over SMTP.
type Email struct {
	opts EmailOptions
	host string
	port int
}

// NewEmail checks the addresses and the TLS mode.
func NewEmail(o EmailOptions) (*Email, error) {
	if len(o.To) == 0 {
		return nil, errors.New("email: at least one recipient is required")
	}
	for _, to := range o.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return nil, fmt.Errorf("email: recipient %q: %w", to, err)
		}
	}
	if _, err := mail.ParseAddress(o.From); err != nil {
		return nil, fmt.Errorf("email: from %q: %w", o.From, err)
	}
	host, portStr, err := net.SplitHostPort(o.SMTP)
	if err != nil {
		return nil, fmt.Errorf("email: smtp %q: want host:port: %w", o.SMTP, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("email: smtp %q: invalid port", o.SMTP)
	}
	switch o.TLS {
	case "":
		o.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("email: tls %q: want starttls, tls or none", o.TLS)
	}
	if o.TLS == "none" && o.Username != "" {
		// go-mail (like net/smtp) refuses to send credentials in clear
		// text anyway; say so at config time
		return nil, errors.New("email: username/password need tls starttls or tls")
	}
	return &Email{opts: o, host: host, port: port}, nil
}

// Kind implements Sender.
func (e *Email) Kind() string { return "email" }

// Identity implements Sender.
func (e *Email) Identity() string {
	return e.opts.SMTP + "\x00" + e.opts.From + "\x00" + strings.Join(e.opts.To, ",")
}

// Send implements Sender: one SMTP session per message. Alerts are rare
// after throttling, and a fresh session survives server restarts.
func (e *Email) Send(ctx context.Context, m Message) error {
	msg, err := e.message(m)
	if err != nil {
		return &DeliveryError{Permanent: true, Err: err}
	}
	tlsConf := e.opts.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tlsConf = tlsConf.Clone()
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = e.host
	}
	opts := []gomail.Option{gomail.WithPort(e.port), gomail.WithTLSConfig(tlsConf)}
	switch e.opts.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if e.opts.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(e.opts.Username), gomail.WithPassword(e.opts.Password))
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, gomail.WithTimeout(max(time.Until(dl), time.Second)))
	}
	client, err := gomail.NewClient(e.host, opts...)
	if err != nil {
		return &DeliveryError{Permanent: true, Err: fmt.Errorf("smtp client: %w", err)}
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return classifySMTP(err)
	}
	return nil
}

// classifySMTP: a 5xx reply (bad recipient, auth refused) will not get
// better by retrying; 4xx and network errors will.
func classifySMTP(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		if se.IsTemp() {
			return &DeliveryError{Err: fmt.Errorf("smtp: %w", err)}
		}
		if c := se.ErrorCode(); c >= 500 && c < 600 {
			return &DeliveryError{Permanent: true, Err: fmt.Errorf("smtp: %w", err)}
		}
	}
	if code := smtpCode(err); code >= 500 && code < 600 {
		return &DeliveryError{Permanent: true, Err: fmt.Errorf("smtp: %w", err)}
	}
	return &DeliveryError{Err: fmt.Errorf("smtp: %w", err)}
}

// smtpCode finds a "5xx " reply code in the error text (go-mail wraps the
// server's reply without exposing the code on every path).
func smtpCode(err error) int {
	s := err.Error()
	for i := 0; i+4 <= len(s); i++ {
		if (i == 0 || s[i-1] == ' ' || s[i-1] == ':') && s[i+3] == ' ' {
			if n, convErr := strconv.Atoi(s[i : i+3]); convErr == nil && n >= 400 && n < 600 {
				return n
			}
		}
	}
	return 0
}

// message builds the mail. The subject is severity and type (trusted); the
// untrusted user appears only in the bodies, HTML-escaped in the HTML part.
func (e *Email) message(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(e.opts.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := msg.To(e.opts.To...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	a := m.Alert
	msg.Subject(fmt.Sprintf("[Vigil] %s %s", a.Severity, a.Type))
	// a stable Message-ID lets mail clients fold a retried delivery
	msg.SetMessageIDWithValue(m.ID + "@vigil.alerts")
	msg.SetDate()
	msg.SetGenHeader("X-Vigil-Alert-Id", m.ID)
	msg.SetGenHeader("X-Vigil-Dedup-Key", a.DedupKey)
	var html bytes.Buffer
	if err := emailHTML.Execute(&html, emailView(a)); err != nil {
		return nil, fmt.Errorf("rendering html: %w", err)
	}
	msg.SetBodyString(gomail.TypeTextPlain, emailText(a))
	msg.AddAlternativeString(gomail.TypeTextHTML, html.String())
	return msg, nil
}

type emailRow struct{ Name, Value string }

func emailView(a Alert) map[string]any {
	rows := []emailRow{{"Severity", a.Severity.String()}, {"Type", string(a.Type)}}
	add := func(name, v string) {
		if v != "" {
			rows = append(rows, emailRow{name, v})
		}
	}
	add("User", a.User)
	add("IP", a.IP)
	add("Location", location(a))
	add("Site", a.Site)
	add("Time", a.Time.UTC().Format("2006-01-02 15:04:05 MST"))
	add("Alert ID", a.ID)
	add("Dedup key", a.DedupKey)
	return map[string]any{"Title": a.Severity.String() + " " + string(a.Type), "Rows": rows, "Details": detailLines(cutDetails(a))}
}

func emailText(a Alert) string {
	var b strings.Builder
	for _, r := range emailView(a)["Rows"].([]emailRow) {
		fmt.Fprintf(&b, "%-10s %s\n", r.Name+":", r.Value)
	}
	if d := detailLines(cutDetails(a)); d != "" {
		b.WriteString("\nDetails:\n")
		b.WriteString(d)
		b.WriteByte('\n')
	}
	return b.String()
}

// cutDetails bounds the details the same way the webhook body does.
func cutDetails(a Alert) map[string]any { return a.Bounded().Details }

var emailHTML = template.Must(template.New("alert").Parse(`<!DOCTYPE html>
<html><body style="font-family:sans-serif">
<h2>Vigil: {{.Title}}</h2>
<table cellpadding="4" style="border-collapse:collapse">
{{range .Rows}}<tr><th align="left">{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
{{if .Details}}<h3>Details</h3><pre>{{.Details}}</pre>{{end}}
</body></html>
`))

// Label implements Sender.
func (e *Email) Label() string { return "email via " + e.opts.SMTP }
