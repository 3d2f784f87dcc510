package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/vigilsec/vigil/detect/risk"
)

// parseLocation reads:
//
//	location {
//		learn <n>
//		remember <n>
//		new country | city <km> | asn ...
//		travel <km/h> [min <km>]
//		trusted <cidr>...
//		on_travel alert | revoke
//	}
func parseLocation(d *caddyfile.Dispenser) (*LocationConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	l := &LocationConfig{}
	for d.NextBlock(1) {
		opt := d.Val()
		args := d.RemainingArgs()
		var err error
		switch opt {
		case "learn":
			l.Learn, err = countArg(d, opt, args)
		case "remember":
			l.Remember, err = countArg(d, opt, args)
		case "new":
			err = l.parseNew(d, args)
		case "travel":
			err = l.parseTravel(d, args)
		case "trusted":
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			l.Trusted = append(l.Trusted, args...)
		case "on_travel":
			if len(args) != 1 {
				return nil, d.ArgErr()
			}
			l.OnTravel = args[0]
		default:
			return nil, d.Errf("location: unknown option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := l.validate(); err != nil {
		return nil, d.Err(err.Error())
	}
	return l, nil
}

func (l *LocationConfig) parseNew(d *caddyfile.Dispenser, args []string) error {
	if len(args) == 0 {
		return d.ArgErr()
	}
	for i := 0; i < len(args); i++ {
		l.New = append(l.New, args[i])
		if args[i] == "city" {
			if i+1 >= len(args) {
				return d.Err("location: new city <km>")
			}
			i++
			km, err := strconv.ParseFloat(args[i], 64)
			if err != nil || km <= 0 {
				return d.Errf("location: new city %q is not a positive distance in km", args[i])
			}
			l.NewCityKm = km
		}
	}
	return nil
}

func (l *LocationConfig) parseTravel(d *caddyfile.Dispenser, args []string) error {
	if (len(args) != 1 && len(args) != 3) || (len(args) == 3 && args[1] != "min") {
		return d.Err("location: want travel <km/h> [min <km>]")
	}
	kmh, err := strconv.ParseFloat(args[0], 64)
	if err != nil || kmh <= 0 {
		return d.Errf("location: travel %q is not a positive speed in km/h", args[0])
	}
	l.TravelKmh = kmh
	if len(args) == 3 {
		km, err := strconv.ParseFloat(args[2], 64)
		if err != nil || km < 0 {
			return d.Errf("location: travel min %q is not a distance in km", args[2])
		}
		l.TravelMinKm = km
	}
	return nil
}

// parseRisk reads "risk" or:
//
//	risk {
//		alert <score>
//		challenge <score> [header <name>]
//		block <score>
//		learn <n>
//	}
func parseRisk(d *caddyfile.Dispenser) (*RiskConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	r := &RiskConfig{}
	given := false
	for d.NextBlock(1) {
		given = true
		opt := d.Val()
		args := d.RemainingArgs()
		var err error
		switch opt {
		case "alert":
			r.Alert, err = scoreArg(d, opt, args)
		case "block":
			r.Block, err = scoreArg(d, opt, args)
		case "challenge":
			if len(args) == 3 && args[1] == "header" {
				r.Header, args = args[2], args[:1]
			}
			r.Challenge, err = scoreArg(d, opt, args)
		case "learn":
			r.Learn, err = countArg(d, opt, args)
		default:
			return nil, d.Errf("risk: unknown option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if !given || (r.Alert == 0 && r.Challenge == 0 && r.Block == 0) {
		r.Alert, r.Challenge = risk.DefaultAlert, risk.DefaultChallenge
	}
	if err := r.validate(); err != nil {
		return nil, d.Err(err.Error())
	}
	return r, nil
}

// parseSpray reads "<ips> ips <accounts> accounts within <dur> [tighten <n>]".
func parseSpray(d *caddyfile.Dispenser) (*SprayConfig, error) {
	args := d.RemainingArgs()
	if (len(args) != 6 && len(args) != 8) || args[1] != "ips" || args[3] != "accounts" || args[4] != "within" || (len(args) == 8 && args[6] != "tighten") {
		return nil, d.Err("spray: want <ips> ips <accounts> accounts within <duration> [tighten <n>]")
	}
	s := &SprayConfig{}
	var err error
	if s.IPs, err = countArg(d, "spray ips", args[0:1]); err != nil {
		return nil, err
	}
	if s.Accounts, err = countArg(d, "spray accounts", args[2:3]); err != nil {
		return nil, err
	}
	if s.Within, err = positiveDuration(d, "spray", args[5]); err != nil {
		return nil, err
	}
	if len(args) == 8 {
		if s.Tighten, err = countArg(d, "spray tighten", args[7:8]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseDistributed reads "<ips> ips <attempts> attempts within <dur>".
func parseDistributed(d *caddyfile.Dispenser) (*DistributedConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 6 || args[1] != "ips" || args[3] != "attempts" || args[4] != "within" {
		return nil, d.Err("distributed: want <ips> ips <attempts> attempts within <duration>")
	}
	c := &DistributedConfig{}
	var err error
	if c.IPs, err = countArg(d, "distributed ips", args[0:1]); err != nil {
		return nil, err
	}
	if c.Attempts, err = countArg(d, "distributed attempts", args[2:3]); err != nil {
		return nil, err
	}
	c.Within, err = positiveDuration(d, "distributed", args[5])
	return c, err
}

// countArg reads one positive count.
func countArg(d *caddyfile.Dispenser, name string, args []string) (int, error) {
	if len(args) != 1 {
		return 0, d.Errf("%s: want one count", name)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return 0, d.Errf("%s: %q is not a positive count", name, args[0])
	}
	return n, nil
}

// scoreArg reads one risk score, 1 to 100.
func scoreArg(d *caddyfile.Dispenser, name string, args []string) (int, error) {
	if len(args) != 1 {
		return 0, d.Errf("risk: want %s <score>", name)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 100 {
		return 0, d.Errf("risk: %s %q is not a score from 1 to 100", name, args[0])
	}
	return n, nil
}

func positiveDuration(d *caddyfile.Dispenser, name, v string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration", name, v)
	}
	return caddy.Duration(dur), nil
}
