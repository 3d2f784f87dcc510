package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/vigilsec/vigil/respond/alert"
)

const goodSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestAlertCaddyfileErrors: bad alert lines are refused with the reason and
// the file:line.
func TestAlertCaddyfileErrors(t *testing.T) {
	cases := []struct{ name, global, want string }{
		{"no type", "alert", "want webhook, slack, email or pagerduty"},
		{"unknown type", "alert sms +123", `unknown type "sms"`},
		{"webhook no url", "alert webhook {\n\tsecret " + goodSecret + "\n}", "want exactly one URL"},
		{"webhook two urls", "alert webhook https://a https://b", "want exactly one URL"},
		{"webhook bad url", "alert webhook ftp://a {\n\tsecret " + goodSecret + "\n}", "not an http:// or https:// URL"},
		{"webhook no secret", "alert webhook https://a/h", "a secret whsec_… is required"},
		{"webhook bad secret", "alert webhook https://a/h {\n\tsecret hunter2\n}", "must start with whsec_"},
		{"webhook short secret", "alert webhook https://a/h {\n\tsecret whsec_c2hvcnQ=\n}", "too short"},
		{"unknown option", "alert slack https://a/h {\n\tchannel #sec\n}", `alert slack: unknown option "channel"`},
		{"email option on slack", "alert slack https://a/h {\n\tsmtp a:25\n}", `alert slack: unknown option "smtp"`},
		{"secret on slack", "alert slack https://a/h {\n\tsecret " + goodSecret + "\n}", `unknown option "secret"`},
		{"bad severity", "alert slack https://a/h {\n\tmin_severity urgent\n}", `unknown severity "urgent"`},
		{"bad type filter", "alert slack https://a/h {\n\ttypes ACCOUNT_LOCKED PWNED\n}", `unknown event type "PWNED"`},
		{"empty types", "alert slack https://a/h {\n\ttypes\n}", "wrong argument count"},
		{"bad throttle", "alert slack https://a/h {\n\tthrottle 10 each 1m\n}", "want <n> per <duration>"},
		{"zero throttle", "alert slack https://a/h {\n\tthrottle 0 per 1m\n}", "not a positive count"},
		{"bad dedup", "alert slack https://a/h {\n\tdedup_window forever\n}", "not a positive duration or off"},
		{"bad max_age", "alert slack https://a/h {\n\tmax_age -1h\n}", "not a positive duration"},
		{"email no recipient", "alert email {\n\tsmtp a:25\n\tfrom v@x.org\n}", "at least one recipient"},
		{"email no smtp", "alert email soc@x.org {\n\tfrom v@x.org\n}", "smtp <host:port> and from <address> are required"},
		{"email bad tls", "alert email soc@x.org {\n\tsmtp a:25\n\tfrom v@x.org\n\ttls maybe\n}", `"maybe" is not starttls, tls or none`},
		{"email two froms", "alert email soc@x.org {\n\tfrom a@x.org b@x.org\n}", "want one argument, got 2"},
		{"pagerduty no key", "alert pagerduty", "exactly one routing key"},
		{"endpoint on webhook", "alert webhook https://a/h {\n\tendpoint https://b\n}", `unknown option "endpoint"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := "{\n\tvigil {\n" + c.global + "\n\t}\n}\n:8080 {\n\trespond 200\n}\n"
			wantAdaptError(t, in, c.want)
		})
	}
}

// TestAlertProvisionErrors: what only provisioning can check (resolved
// placeholders, addresses) is refused there with the channel named.
func TestAlertProvisionErrors(t *testing.T) {
	t.Setenv("VIGIL_TEST_BAD_SECRET", "not-a-secret")
	t.Setenv("VIGIL_TEST_SECRET", goodSecret)
	for _, c := range []struct {
		cfg  AlertConfig
		want string
	}{
		{AlertConfig{Type: "webhook", URL: "https://a/h", Secret: "{env.VIGIL_TEST_BAD_SECRET}"}, "whsec_"},
		{AlertConfig{Type: "webhook", URL: "{env.VIGIL_TEST_UNSET}", Secret: "{env.VIGIL_TEST_SECRET}"}, "alert webhook url: {env.VIGIL_TEST_UNSET} is empty or unset"},
		{AlertConfig{Type: "email", To: []string{"soc@x.org"}, From: "v@x.org", SMTP: "nohost"}, "host:port"},
		{AlertConfig{Type: "pagerduty", RoutingKey: "{env.VIGIL_TEST_UNSET}"}, "alert pagerduty routing key: {env.VIGIL_TEST_UNSET} is empty or unset"},
		{AlertConfig{Type: "slack", URL: "https://a/h", MinSeverity: "bad"}, "unknown severity"},
		{AlertConfig{Type: "telegram"}, "unknown alert type"},
	} {
		if _, err := resolvedRoute(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	r, err := resolvedRoute(AlertConfig{Type: "webhook", URL: "https://a/h", Secret: "{env.VIGIL_TEST_SECRET}"})
	if err != nil || r.Sender.Kind() != "webhook" {
		t.Fatalf("env secret: %v", err)
	}
}

// FuzzAlertCaddyfile: the alert parser answers any input with a config or
// an error, never a panic, and building the channels of what it accepts
// fails cleanly or succeeds (nothing is sent).
func FuzzAlertCaddyfile(f *testing.F) {
	for _, s := range []string{
		"vigil {\n alert webhook https://h/x {\n secret " + goodSecret + "\n min_severity high\n types ACCOUNT_LOCKED\n }\n}",
		"vigil {\n alert slack https://h/x {\n throttle 5 per 1m\n dedup_window off\n }\n}",
		"vigil {\n alert email a@b.c d@e.f {\n smtp h:587\n from v@x.y\n username u\n password p\n tls tls\n }\n}",
		"vigil {\n alert pagerduty KEY {\n endpoint https://e/v2\n max_age 1h\n timeout 1s\n }\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		a := new(App)
		if a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)) != nil {
			return
		}
		for _, c := range a.Alerts {
			_, _ = resolvedRoute(c)
		}
	})
}

// resolvedRoute resolves a channel's placeholders and builds it.
func resolvedRoute(c AlertConfig) (alert.Route, error) {
	r, err := c.resolved()
	if err != nil {
		return alert.Route{}, err
	}
	return r.route()
}
