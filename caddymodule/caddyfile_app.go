package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("vigil", parseGlobalOption)
}

// parseGlobalOption reads the `vigil { … }` global option into the vigil app.
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "vigil", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens:
//
//	vigil {
//		store memory | redis <url> | redis { addrs …; cluster; sentinel <master>; username <u>; password <p>; db <n>; tls; ca <file>; cert <file>; key <file>; server_name <name>; prefix <p> }
//		allow <cidr>...
//		fail_mode open|closed
//		events_retention <duration>
//		events_buffer <n>
//		alerts_buffer <n>
//		alert webhook|slack|email|pagerduty … { … }   (see parseAlert)
//		geoip <City-or-Country.mmdb> [asn <ASN.mmdb>] [{ poll <dur> }]
//		audit_log <path> { sign_key <pem>; checkpoint <dur>; rotate <size> [keep <n>]; instance <name> }
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "store":
			s, err := parseStore(d)
			if err != nil {
				return err
			}
			a.Store = s
		case "allow":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if _, err := parsePrefixes(args); err != nil {
				return d.Errf("allow: %v", err)
			}
			a.Allow = append(a.Allow, args...)
		case "fail_mode":
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.FailMode = d.Val()
			if err := a.validateFailMode(); err != nil {
				return d.Err(err.Error())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "events_retention":
			dur, err := oneDuration(d)
			if err != nil {
				return err
			}
			a.EventsRetention = dur
		case "events_buffer", "alerts_buffer":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 {
				return d.Errf("%s: want a positive number of entries, got %q", opt, d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if opt == "events_buffer" {
				a.EventsBuffer = n
			} else {
				a.AlertsBuffer = n
			}
		case "audit_log":
			c, err := parseAuditLog(d)
			if err != nil {
				return err
			}
			a.AuditLog = c
		case "geoip":
			g, err := parseGeoIP(d)
			if err != nil {
				return err
			}
			a.GeoIP = g
		case "alert":
			c, err := parseAlert(d)
			if err != nil {
				return err
			}
			a.Alerts = append(a.Alerts, c)
		default:
			return d.Errf("unknown vigil option %q", d.Val())
		}
	}
	return nil
}

func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	s := &StoreConfig{Type: d.Val()}
	switch s.Type {
	case "memory":
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		return s, nil
	case "redis":
	default:
		return nil, d.Errf("store: unknown type %q (want memory or redis)", s.Type)
	}
	if d.NextArg() {
		s.URL = d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := parseRedisOption(d, s); err != nil {
			return nil, err
		}
	}
	if s.URL == "" && len(s.Addrs) == 0 {
		return nil, d.Err("store redis: give a URL or an addrs line")
	}
	return s, nil
}

func parseRedisOption(d *caddyfile.Dispenser, s *StoreConfig) error {
	opt := d.Val()
	args := d.RemainingArgs()
	want := func(n int) error {
		if len(args) != n {
			return d.Errf("store redis %s: want %d argument(s), got %d", opt, n, len(args))
		}
		return nil
	}
	switch opt {
	case "addrs":
		if len(args) == 0 {
			return d.ArgErr()
		}
		s.Addrs = append(s.Addrs, args...)
	case "cluster", "tls":
		if err := want(0); err != nil {
			return err
		}
		if opt == "cluster" {
			s.Cluster = true
		} else {
			s.TLS = true
		}
	case "sentinel", "username", "password", "prefix", "ca", "cert", "key", "server_name":
		if err := want(1); err != nil {
			return err
		}
		*map[string]*string{
			"sentinel": &s.Sentinel, "username": &s.Username, "password": &s.Password, "prefix": &s.Prefix,
			"ca": &s.CA, "cert": &s.Cert, "key": &s.Key, "server_name": &s.ServerName,
		}[opt] = args[0]
	case "db":
		if err := want(1); err != nil {
			return err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return d.Errf("store redis db: %q is not a database number", args[0])
		}
		s.DB = n
	default:
		return d.Errf("store redis: unknown option %q", opt)
	}
	return nil
}

// oneDuration reads exactly one duration argument.
func oneDuration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil || dur <= 0 {
		return 0, d.Errf("%q is not a positive duration", d.Val())
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return caddy.Duration(dur), nil
}
