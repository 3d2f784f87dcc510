package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond/alert"
)

// parseAlert reads one `alert` line of the global vigil option:
//
//	alert webhook <url> { secret <whsec_…>; <common> }
//	alert slack <url> { <common> }
//	alert email <to>... { smtp <host:port>; from <addr>; username <u>; password <p>; tls starttls|tls|none; <common> }
//	alert pagerduty <routing_key> { endpoint <url>; <common> }
//
// where <common> is any of: min_severity <sev>; types <TYPE>...;
// max_age <dur>; timeout <dur>; throttle <n> per <dur> | off;
// dedup_window <dur> | off.
func parseAlert(d *caddyfile.Dispenser) (AlertConfig, error) {
	if !d.NextArg() {
		return AlertConfig{}, d.Err("alert: want webhook, slack, email or pagerduty")
	}
	c := AlertConfig{Type: d.Val()}
	args := d.RemainingArgs()
	switch c.Type {
	case "webhook", "slack":
		if len(args) != 1 {
			return c, d.Errf("alert %s: want exactly one URL", c.Type)
		}
		c.URL = args[0]
		if !hasPlaceholder(c.URL) && !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			return c, d.Errf("alert %s: %q is not an http:// or https:// URL", c.Type, c.URL)
		}
	case "email":
		if len(args) == 0 {
			return c, d.Err("alert email: want at least one recipient address")
		}
		c.To = args
	case "pagerduty":
		if len(args) != 1 {
			return c, d.Err("alert pagerduty: want exactly one routing key")
		}
		c.RoutingKey = args[0]
	default:
		return c, d.Errf("alert: unknown type %q (want webhook, slack, email or pagerduty)", c.Type)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := parseAlertOption(d, &c); err != nil {
			return c, err
		}
	}
	switch {
	case c.Type == "webhook" && c.Secret == "":
		return c, d.Err("alert webhook: a secret whsec_… is required (Standard Webhooks signing)")
	case c.Type == "email" && (c.SMTP == "" || c.From == ""):
		return c, d.Err("alert email: smtp <host:port> and from <address> are required")
	}
	return c, nil
}

// parseAlertOption reads one line of an alert block.
func parseAlertOption(d *caddyfile.Dispenser, c *AlertConfig) error {
	opt := d.Val()
	args := d.RemainingArgs()
	one := func() (string, error) {
		if len(args) != 1 {
			return "", d.Errf("alert %s %s: want one argument, got %d", c.Type, opt, len(args))
		}
		return args[0], nil
	}
	only := func(types ...string) error {
		for _, t := range types {
			if c.Type == t {
				return nil
			}
		}
		return d.Errf("alert %s: unknown option %q", c.Type, opt)
	}
	var err error
	switch opt {
	case "secret":
		if err = only("webhook"); err == nil {
			c.Secret, err = one()
		}
		if err == nil && !hasPlaceholder(c.Secret) {
			if _, perr := alert.ParseSecret(c.Secret); perr != nil {
				return d.Errf("alert webhook secret: %v", perr)
			}
		}
	case "endpoint":
		if err = only("pagerduty"); err == nil {
			c.Endpoint, err = one()
		}
	case "smtp", "from", "username", "password", "tls":
		if err = only("email"); err != nil {
			return err
		}
		v, err := one()
		if err != nil {
			return err
		}
		switch opt {
		case "smtp":
			c.SMTP = v
		case "from":
			c.From = v
		case "username":
			c.Username = v
		case "password":
			c.Password = v
		case "tls":
			if v != "starttls" && v != "tls" && v != "none" {
				return d.Errf("alert email tls: %q is not starttls, tls or none", v)
			}
			c.TLS = v
		}
	case "min_severity":
		v, err := one()
		if err != nil {
			return err
		}
		sev, perr := detect.ParseSeverity(v)
		if perr != nil {
			return d.Errf("alert %s min_severity: %v", c.Type, perr)
		}
		c.MinSeverity = sev.String()
	case "types":
		if len(args) == 0 {
			return d.ArgErr()
		}
		for _, a := range args {
			t, perr := detect.ParseType(a)
			if perr != nil {
				return d.Errf("alert %s types: %v", c.Type, perr)
			}
			c.Types = append(c.Types, string(t))
		}
	case "max_age", "timeout":
		v, err := one()
		if err != nil {
			return err
		}
		dur, perr := caddy.ParseDuration(v)
		if perr != nil || dur <= 0 {
			return d.Errf("alert %s %s: %q is not a positive duration", c.Type, opt, v)
		}
		if opt == "max_age" {
			c.MaxAge = caddy.Duration(dur)
		} else {
			c.Timeout = caddy.Duration(dur)
		}
	case "throttle":
		return parseThrottle(d, c, args)
	case "dedup_window":
		v, err := one()
		if err != nil {
			return err
		}
		if v == "off" {
			c.DedupWindow = -1
			return nil
		}
		dur, perr := caddy.ParseDuration(v)
		if perr != nil || dur <= 0 {
			return d.Errf("alert %s dedup_window: %q is not a positive duration or off", c.Type, v)
		}
		c.DedupWindow = caddy.Duration(dur)
	default:
		return d.Errf("alert %s: unknown option %q", c.Type, opt)
	}
	return err
}

// parseThrottle reads `throttle <n> per <duration>` or `throttle off`.
func parseThrottle(d *caddyfile.Dispenser, c *AlertConfig, args []string) error {
	if len(args) == 1 && args[0] == "off" {
		c.Throttle = -1
		return nil
	}
	if len(args) != 3 || args[1] != "per" {
		return d.Errf("alert %s throttle: want <n> per <duration>, or off", c.Type)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return d.Errf("alert %s throttle: %q is not a positive count", c.Type, args[0])
	}
	dur, err := caddy.ParseDuration(args[2])
	if err != nil || dur <= 0 {
		return d.Errf("alert %s throttle: %q is not a positive duration", c.Type, args[2])
	}
	c.Throttle, c.ThrottleWindow = n, caddy.Duration(dur)
	return nil
}

// hasPlaceholder reports whether s holds a {…} placeholder resolved at
// provision ({env.NAME}); such values are checked then, not now.
func hasPlaceholder(s string) bool { return strings.Contains(s, "{") }
