package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("vigil", parseHandlerDirective)
	httpcaddyfile.RegisterDirectiveOrder("vigil", httpcaddyfile.Before, "basic_auth")
}

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	vigil {
//		site <name>
//		login <METHOD> <path> {
//			user form:<field> | json:<field.path> | header:<name>
//			success status <code>... | header <name> [<value>] | redirect_not <prefix>
//			unreadable refuse | forward
//		}
//		lockout <n> within <dur> for <dur> [max <dur>]
//		block_ip <n> within <dur> for <dur> [max <dur>]
//		stuffing <accounts> within <dur>
//		max_body <size>
//		monitor_only
//		session jwt { … }                         (see parseSession)
//		restrict <path-glob> role <role>... [claim <claim>]
//		violations <n> within <dur>
//		terminate_sessions_on <TYPE>... | none
//		honeypot <path-glob>...
//		probes off | probes { … }                 (see parseProbes)
//		intrusion_ban <dur> [max <dur>]
//		location { … }                           (see parseLocation)
//		risk [{ … }]                              (see parseRisk)
//		spray <ips> ips <accounts> accounts within <dur> [tighten <n>]
//		distributed <ips> ips <attempts> attempts within <dur>
//		block_network <n> within <dur> for <dur> [max <dur>]
//		export <path-glob>... { … }              (see parseExport)
//		sensitive <path-glob>... [{ hours <HH-HH> }]
//		enumeration <pattern> <n> within <dur>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	h.Source = d.File() + ":" + strconv.Itoa(d.Line())
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "site":
			h.Site, err = oneString(d)
		case "login":
			var l LoginRoute
			if l, err = parseLogin(d); err == nil {
				h.Logins = append(h.Logins, l)
			}
		case "lockout":
			h.Lockout, err = parseBan(d)
		case "block_ip":
			h.BlockIP, err = parseBan(d)
		case "stuffing":
			h.Stuffing, err = parseStuffing(d)
		case "max_body":
			var s string
			if s, err = oneString(d); err == nil {
				n, perr := humanize.ParseBytes(s)
				if perr != nil || n == 0 || n > 1<<30 {
					return d.Errf("max_body: %q is not a size between 1B and 1GiB", s)
				}
				h.MaxBodyBytes = int64(n)
			}
		case "monitor_only":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.MonitorOnly = true
		case "session":
			if h.Session != nil {
				return d.Err("session: given twice")
			}
			h.Session, err = parseSession(d)
		case "restrict":
			var rule RestrictRule
			if rule, err = parseRestrict(d); err == nil {
				h.Restrict = append(h.Restrict, rule)
			}
		case "violations":
			h.Violations, err = parseWindow(d)
		case "terminate_sessions_on":
			list := d.RemainingArgs()
			if len(list) == 0 {
				return d.ArgErr()
			}
			if _, terr := terminateTypes(list); terr != nil {
				return d.Err(terr.Error())
			}
			h.TerminateSessionsOn = list
		case "honeypot":
			paths := d.RemainingArgs()
			if len(paths) == 0 {
				return d.ArgErr()
			}
			h.Honeypot = append(h.Honeypot, paths...)
			if _, herr := compileHoneypots(h.Honeypot); herr != nil {
				return d.Err(herr.Error())
			}
		case "probes":
			h.Probes, err = parseProbes(d)
		case "intrusion_ban":
			h.IntrusionBan, err = parseBanLength(d)
		case "location":
			h.Location, err = parseLocation(d)
		case "risk":
			h.Risk, err = parseRisk(d)
		case "spray":
			h.Spray, err = parseSpray(d)
		case "distributed":
			h.Distributed, err = parseDistributed(d)
		case "block_network":
			h.BlockNetwork, err = parseBan(d)
		case "export":
			var e ExportConfig
			if e, err = parseExport(d); err == nil {
				h.Export = append(h.Export, e)
			}
		case "sensitive":
			var s SensitiveConfig
			if s, err = parseSensitive(d); err == nil {
				h.Sensitive = append(h.Sensitive, s)
			}
		case "enumeration":
			var e EnumerationConfig
			if e, err = parseEnumeration(d); err == nil {
				h.Enumeration = append(h.Enumeration, e)
			}
		default:
			return d.Errf("unknown vigil subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	if len(h.Restrict) > 0 && h.Session == nil {
		return d.Err("restrict: needs a session jwt block to know who the user is")
	}
	return nil
}

func oneString(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

func parseLogin(d *caddyfile.Dispenser) (LoginRoute, error) {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return LoginRoute{}, d.Err("login: want <METHOD> <path>")
	}
	l := LoginRoute{Method: strings.ToUpper(args[0]), Path: args[1]}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "user":
			spec, err := oneString(d)
			if err != nil {
				return l, err
			}
			from, name, ok := strings.Cut(spec, ":")
			if !ok || name == "" || (from != "form" && from != "json" && from != "header") {
				return l, d.Errf("login user: %q is not form:<field>, json:<path> or header:<name>", spec)
			}
			l.User = UserSource{From: from, Name: name}
		case "success":
			if err := parseSuccess(d, &l); err != nil {
				return l, err
			}
		case "unreadable":
			v, err := oneString(d)
			if err != nil {
				return l, err
			}
			if v != "refuse" && v != "forward" {
				return l, d.Errf("login unreadable: %q is not refuse or forward", v)
			}
			l.Unreadable = v
		default:
			return l, d.Errf("unknown login option %q", d.Val())
		}
	}
	if l.User.From == "" {
		return l, d.Errf("login %s %s: a user line is required", l.Method, l.Path)
	}
	if err := l.Validate(); err != nil {
		return l, d.Err(err.Error())
	}
	return l, nil
}

func parseSuccess(d *caddyfile.Dispenser, l *LoginRoute) error {
	if l.Success == nil {
		l.Success = new(SuccessRule)
	}
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Err("success: want status <code>..., header <name> [<value>] or redirect_not <prefix>")
	}
	switch args[0] {
	case "status":
		for _, a := range args[1:] {
			c, err := strconv.Atoi(a)
			if err != nil || c < 100 || c > 599 {
				return d.Errf("success status: %q is not an HTTP status code", a)
			}
			l.Success.Status = append(l.Success.Status, c)
		}
	case "header":
		if len(args) > 3 {
			return d.ArgErr()
		}
		hm := &HeaderMatch{Name: args[1]}
		if len(args) == 3 {
			hm.Value = args[2]
		}
		l.Success.Header = hm
	case "redirect_not":
		if len(args) != 2 {
			return d.ArgErr()
		}
		l.Success.RedirectNot = args[1]
	default:
		return d.Errf("success: unknown test %q", args[0])
	}
	return nil
}

// parseBan reads "<n> within <dur> for <dur> [max <dur>]".
func parseBan(d *caddyfile.Dispenser) (*BanPolicy, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if (len(args) != 5 && len(args) != 7) || args[1] != "within" || args[3] != "for" || (len(args) == 7 && args[5] != "max") {
		return nil, d.Errf("%s: want <n> within <duration> for <duration> [max <duration>]", name)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return nil, d.Errf("%s: %q is not a positive count", name, args[0])
	}
	b := &BanPolicy{Failures: n}
	durs := []*caddy.Duration{&b.Within, &b.For}
	vals := []string{args[2], args[4]}
	if len(args) == 7 {
		durs, vals = append(durs, &b.Max), append(vals, args[6])
	}
	for i, v := range vals {
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur <= 0 {
			return nil, d.Errf("%s: %q is not a positive duration", name, v)
		}
		*durs[i] = caddy.Duration(dur)
	}
	if err := b.validate(name); err != nil {
		return nil, d.Err(err.Error())
	}
	return b, nil
}

// parseStuffing reads "<accounts> within <dur>".
func parseStuffing(d *caddyfile.Dispenser) (*StuffingPolicy, error) {
	args := d.RemainingArgs()
	if len(args) != 3 || args[1] != "within" {
		return nil, d.Err("stuffing: want <accounts> within <duration>")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 2 {
		return nil, d.Errf("stuffing: %q is not a count of at least 2", args[0])
	}
	dur, err := caddy.ParseDuration(args[2])
	if err != nil || dur <= 0 {
		return nil, d.Errf("stuffing: %q is not a positive duration", args[2])
	}
	return &StuffingPolicy{Accounts: n, Within: caddy.Duration(dur)}, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
