package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/vigilsec/vigil/detect/session"
)

// parseSession reads:
//
//	session jwt {
//		header <name> | cookie <name>
//		key hs256 <secret> | key <alg> <pem-file>
//		jwks <url> [<alg>...]
//		issuer <iss>
//		audience <aud>...
//		leeway <dur>
//		user_claim <claim>
//		roles_claim <claim>
//		max_lifetime <dur>
//		cache_size <n>
//		require
//	}
func parseSession(d *caddyfile.Dispenser) (*SessionConfig, error) {
	if !d.NextArg() || d.Val() != "jwt" || d.NextArg() {
		return nil, d.Err("session: want session jwt { … }")
	}
	c := new(JWTConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "header":
			c.Header, err = oneString(d)
		case "cookie":
			c.Cookie, err = oneString(d)
		case "key":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Err("session key: want hs256 <secret> or <alg> <pem-file>")
			}
			k := JWTKey{Alg: strings.ToLower(args[0])}
			if known, hmac := session.KeyAlg(k.Alg); !known {
				return nil, d.Errf("session key: unknown algorithm %q", args[0])
			} else if hmac {
				k.Secret = args[1]
			} else {
				k.PEMFile = args[1]
			}
			c.Keys = append(c.Keys, k)
		case "jwks":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			src := JWKSSource{URL: args[0]}
			for _, a := range args[1:] {
				src.Algs = append(src.Algs, strings.ToLower(a))
			}
			c.JWKS = append(c.JWKS, src)
		case "issuer":
			c.Issuer, err = oneString(d)
		case "audience":
			if c.Audience = d.RemainingArgs(); len(c.Audience) == 0 {
				return nil, d.ArgErr()
			}
		case "leeway":
			var dur caddy.Duration
			if dur, err = durationArg(d, true); err == nil {
				c.Leeway = &dur
			}
		case "max_lifetime":
			c.MaxLifetime, err = durationArg(d, false)
		case "user_claim":
			c.UserClaim, err = oneString(d)
		case "roles_claim":
			c.RolesClaim, err = oneString(d)
		case "cache_size":
			c.CacheSize, err = onePositive(d)
		case "require":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.Require = true
		default:
			return nil, d.Errf("unknown session jwt option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := c.validate(); err != nil {
		return nil, d.Err(err.Error())
	}
	return &SessionConfig{JWT: c}, nil
}

// parseRestrict reads "restrict <path-glob> role <role>... [claim <claim>]".
func parseRestrict(d *caddyfile.Dispenser) (RestrictRule, error) {
	args := d.RemainingArgs()
	if len(args) < 3 || args[1] != "role" {
		return RestrictRule{}, d.Err("restrict: want <path> role <role>... [claim <claim>]")
	}
	r := RestrictRule{Path: args[0]}
	rest := args[2:]
	if n := len(rest); n >= 2 && rest[n-2] == "claim" {
		r.Claim, rest = rest[n-1], rest[:n-2]
	}
	for _, role := range rest {
		if role == "claim" || role == "role" {
			return r, d.Errf("restrict: %q is misplaced; want <path> role <role>... [claim <claim>]", role)
		}
	}
	r.Roles = rest
	if err := r.validate(); err != nil {
		return r, d.Err(err.Error())
	}
	return r, nil
}

// parseWindow reads "<count> within <dur>".
func parseWindow(d *caddyfile.Dispenser) (*WindowPolicy, error) {
	name := d.Val()
	return parseWindowArgs(d, name, d.RemainingArgs())
}

func parseWindowArgs(d *caddyfile.Dispenser, name string, args []string) (*WindowPolicy, error) {
	if len(args) != 3 || args[1] != "within" {
		return nil, d.Errf("%s: want <count> within <duration>", name)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return nil, d.Errf("%s: %q is not a positive count", name, args[0])
	}
	dur, err := caddy.ParseDuration(args[2])
	if err != nil || dur <= 0 {
		return nil, d.Errf("%s: %q is not a positive duration", name, args[2])
	}
	return &WindowPolicy{Count: n, Within: caddy.Duration(dur)}, nil
}

func onOff(d *caddyfile.Dispenser) (*bool, error) {
	name := d.Val()
	v, err := oneString(d)
	if err != nil {
		return nil, err
	}
	switch v {
	case "on":
		return ptrTo(true), nil
	case "off":
		return ptrTo(false), nil
	}
	return nil, d.Errf("%s: %q is not on or off", name, v)
}

func ptrTo[T any](v T) *T { return &v }

func durationArg(d *caddyfile.Dispenser, zeroOK bool) (caddy.Duration, error) {
	name := d.Val()
	s, err := oneString(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 || (dur == 0 && !zeroOK) {
		return 0, d.Errf("%s: %q is not a valid duration", name, s)
	}
	return caddy.Duration(dur), nil
}

func onePositive(d *caddyfile.Dispenser) (int, error) {
	name := d.Val()
	s, err := oneString(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, d.Errf("%s: %q is not a positive number", name, s)
	}
	return n, nil
}
