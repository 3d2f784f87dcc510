package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// parseExport reads:
//
//	export <path-glob>... {
//		bytes <size> within <dur>
//		rows <n> within <dur>
//		requests <n> within <dur>
//		rows_from header <name> | body
//		baseline <factor> [min_history <n>] [window <dur>]
//		peers <claim>
//		page_size <n> [params <name>...]
//		over alert | throttle | revoke | cut
//	}
func parseExport(d *caddyfile.Dispenser) (ExportConfig, error) {
	e := ExportConfig{Paths: d.RemainingArgs()}
	if len(e.Paths) == 0 {
		return e, d.ArgErr()
	}
	for d.NextBlock(1) {
		opt := d.Val()
		args := d.RemainingArgs()
		var err error
		switch opt {
		case "bytes":
			e.Bytes, err = parseVolume(d, opt, args, true)
		case "rows":
			e.Rows, err = parseVolume(d, opt, args, false)
		case "requests":
			e.Requests, err = parseVolume(d, opt, args, false)
		case "rows_from":
			switch {
			case len(args) == 1 && args[0] == "body":
				e.RowsHeader = ""
			case len(args) == 2 && args[0] == "header":
				e.RowsHeader = args[1]
			default:
				return e, d.Err("export: want rows_from header <name> | body")
			}
		case "baseline":
			e.Baseline, err = parseBaseline(d, args)
		case "peers":
			if len(args) != 1 {
				return e, d.ArgErr()
			}
			e.Peers = args[0]
		case "page_size":
			e.PageSize, err = parsePageSize(d, args)
		case "over":
			if len(args) != 1 {
				return e, d.ArgErr()
			}
			e.Over = args[0]
		default:
			return e, d.Errf("export: unknown option %q", opt)
		}
		if err != nil {
			return e, err
		}
	}
	if err := e.validate(); err != nil {
		return e, d.Err(err.Error())
	}
	return e, nil
}

// parseVolume reads "<max> within <dur>"; a size (10MB, 1GiB) for bytes.
func parseVolume(d *caddyfile.Dispenser, name string, args []string, size bool) (*VolumeLimit, error) {
	if len(args) != 3 || args[1] != "within" {
		return nil, d.Errf("export: want %s <max> within <duration>", name)
	}
	var n int64
	if size {
		v, err := humanize.ParseBytes(args[0])
		if err != nil || v == 0 || v > 1<<62 {
			return nil, d.Errf("export: bytes %q is not a size", args[0])
		}
		n = int64(v)
	} else {
		v, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || v < 1 {
			return nil, d.Errf("export: %s %q is not a positive count", name, args[0])
		}
		n = v
	}
	dur, err := positiveDuration(d, "export "+name, args[2])
	if err != nil {
		return nil, err
	}
	return &VolumeLimit{Max: n, Within: dur}, nil
}

// parseBaseline reads "<factor> [min_history <n>] [window <dur>]".
func parseBaseline(d *caddyfile.Dispenser, args []string) (*BaselineConfig, error) {
	if len(args) == 0 || len(args)%2 != 1 {
		return nil, d.Err("export: want baseline <factor> [min_history <n>] [window <duration>]")
	}
	f, err := strconv.ParseFloat(args[0], 64)
	if err != nil || f <= 1 {
		return nil, d.Errf("export: baseline factor %q is not a number above 1", args[0])
	}
	b := &BaselineConfig{Factor: f}
	for i := 1; i+1 < len(args); i += 2 {
		switch args[i] {
		case "min_history":
			if b.MinHistory, err = countArg(d, "baseline min_history", args[i+1:i+2]); err != nil {
				return nil, err
			}
		case "window":
			if b.Window, err = positiveDuration(d, "baseline window", args[i+1]); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("export: baseline: unknown option %q", args[i])
		}
	}
	return b, nil
}

// parsePageSize reads "<n> [params <name>...]".
func parsePageSize(d *caddyfile.Dispenser, args []string) (*PageSizeConfig, error) {
	if len(args) == 0 || (len(args) > 1 && (args[1] != "params" || len(args) == 2)) {
		return nil, d.Err("export: want page_size <n> [params <name>...]")
	}
	n, err := countArg(d, "page_size", args[:1])
	if err != nil {
		return nil, err
	}
	p := &PageSizeConfig{Max: n}
	if len(args) > 2 {
		p.Params = args[2:]
	}
	return p, nil
}

// parseSensitive reads "sensitive <path-glob>... [{ hours <HH-HH> }]".
func parseSensitive(d *caddyfile.Dispenser) (SensitiveConfig, error) {
	s := SensitiveConfig{Paths: d.RemainingArgs()}
	if len(s.Paths) == 0 {
		return s, d.ArgErr()
	}
	for d.NextBlock(1) {
		if d.Val() != "hours" {
			return s, d.Errf("sensitive: unknown option %q", d.Val())
		}
		v, err := oneString(d)
		if err != nil {
			return s, err
		}
		s.Hours = v
		if _, _, err := s.hours(); err != nil {
			return s, d.Err(err.Error())
		}
	}
	return s, nil
}

// parseEnumeration reads "<pattern> <n> within <dur>".
func parseEnumeration(d *caddyfile.Dispenser) (EnumerationConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 4 || args[2] != "within" {
		return EnumerationConfig{}, d.Err("enumeration: want <pattern> <n> within <duration>")
	}
	e := EnumerationConfig{Pattern: args[0]}
	var err error
	if e.Limit, err = countArg(d, "enumeration", args[1:2]); err != nil {
		return e, err
	}
	e.Within, err = positiveDuration(d, "enumeration", args[3])
	return e, err
}
