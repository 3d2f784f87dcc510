package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parseProbes reads "probes off" or
//
//	probes {
//		scan <paths> within <dur> | scan off
//		sensitive_files on|off
//		signatures on|off
//		scanner_agents on|off
//		probe_paths on|off
//		sensitivity low|normal|high
//	}
func parseProbes(d *caddyfile.Dispenser) (*ProbesConfig, error) {
	p := new(ProbesConfig)
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Err("probes: want probes off, or a block")
		}
		p.Off = true
		return p, nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "scan":
			args := d.RemainingArgs()
			if len(args) == 1 && args[0] == "off" {
				p.Scan = &ScanPolicy{Off: true}
				continue
			}
			w, werr := parseWindowArgs(d, "probes scan", args)
			if werr != nil {
				return nil, werr
			}
			if w.Count < 2 {
				return nil, d.Err("probes scan: at least 2 paths")
			}
			p.Scan = &ScanPolicy{Paths: w.Count, Within: w.Within}
		case "sensitive_files":
			p.SensitiveFiles, err = onOff(d)
		case "signatures":
			p.Signatures, err = onOff(d)
		case "scanner_agents":
			p.ScannerAgents, err = onOff(d)
		case "probe_paths":
			p.ProbePaths, err = onOff(d)
		case "sensitivity":
			if p.Sensitivity, err = oneString(d); err == nil {
				if _, ok := sensitivities[p.Sensitivity]; !ok || p.Sensitivity == "" {
					err = d.Errf("probes sensitivity: want low, normal or high, not %q", p.Sensitivity)
				}
			}
		default:
			return nil, d.Errf("unknown probes option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseBanLength reads "<dur> [max <dur>]".
func parseBanLength(d *caddyfile.Dispenser) (*BanLength, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if (len(args) != 1 && len(args) != 3) || (len(args) == 3 && args[1] != "max") {
		return nil, d.Errf("%s: want <duration> [max <duration>]", name)
	}
	b := new(BanLength)
	for i, dst := range map[int]*caddy.Duration{0: &b.For, 2: &b.Max} {
		if i >= len(args) {
			continue
		}
		dur, err := caddy.ParseDuration(args[i])
		if err != nil || dur <= 0 {
			return nil, d.Errf("%s: %q is not a positive duration", name, args[i])
		}
		*dst = caddy.Duration(dur)
	}
	if err := b.validate(); err != nil {
		return nil, d.Err(err.Error())
	}
	return b, nil
}
