package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/detect"
	loginpkg "github.com/vigilsec/vigil/detect/login"
)

// The site policy's configuration types (the JSON form of the Caddyfile
// subdirectives). Their field comments are the user documentation.

// LoginRoute describes one login endpoint of the protected app: method,
// path, where the username is, and how success is recognised.
type LoginRoute = loginpkg.Route

// UserSource names the field that carries the username.
type UserSource = loginpkg.UserSource

// SuccessRule recognises a successful login.
type SuccessRule = loginpkg.SuccessRule

// HeaderMatch is a response header name and expected value.
type HeaderMatch = loginpkg.HeaderMatch

// BanPolicy is "<failures> within <within> for <for> [max <max>]".
type BanPolicy struct {
	// Failures inside Within that trigger the ban.
	Failures int `json:"failures"`
	// Within is the sliding window the failures are counted in.
	Within caddy.Duration `json:"within"`
	// For is the first ban's length.
	For caddy.Duration `json:"for"`
	// Max caps a repeat offender's ban, which doubles on each repeat.
	// Zero means bans do not grow.
	Max caddy.Duration `json:"max,omitempty"`
}

// StuffingPolicy is "<accounts> within <within>": that many distinct
// accounts failing from one IP is credential stuffing, and blocks the IP.
type StuffingPolicy struct {
	Accounts int            `json:"accounts"`
	Within   caddy.Duration `json:"within"`
}

// WindowPolicy is "<count> within <dur>".
type WindowPolicy struct {
	Count  int            `json:"count"`
	Within caddy.Duration `json:"within"`
}

func (b *BanPolicy) ban() detect.Ban {
	if b == nil {
		return detect.Ban{}
	}
	return detect.Ban{Failures: b.Failures, Within: time.Duration(b.Within), Base: time.Duration(b.For), Max: time.Duration(b.Max)}
}

func (b *BanPolicy) validate(name string) error {
	if b == nil {
		return nil
	}
	switch {
	case b.Failures < 1:
		return fmt.Errorf("%s: failures must be at least 1", name)
	case b.Within <= 0:
		return fmt.Errorf("%s: within must be a positive duration", name)
	case b.For <= 0:
		return fmt.Errorf("%s: for must be a positive duration", name)
	case b.Max != 0 && b.Max < b.For:
		return fmt.Errorf("%s: max (%s) is shorter than for (%s)", name, time.Duration(b.Max), time.Duration(b.For))
	}
	return nil
}

// loginPolicy is the login detector's form of the site's thresholds.
func (h *Handler) loginPolicy() loginpkg.Policy {
	p := loginpkg.Policy{Lockout: h.Lockout.ban(), BlockIP: h.BlockIP.ban()}
	if h.Stuffing != nil {
		p.StuffingAccounts = h.Stuffing.Accounts
		p.StuffingWithin = time.Duration(h.Stuffing.Within)
	}
	return p
}

// defaultTerminateOn is what terminate_sessions_on means when not given.
var defaultTerminateOn = []string{string(detect.AccountLocked)}

// terminateTypes parses terminate_sessions_on: event types, or "none".
func terminateTypes(list []string) (map[detect.Type]bool, error) {
	if list == nil {
		list = defaultTerminateOn
	}
	out := map[detect.Type]bool{}
	for _, s := range list {
		if s == "none" {
			if len(list) > 1 {
				return nil, fmt.Errorf("terminate_sessions_on: none excludes event types")
			}
			return out, nil
		}
		t, err := detect.ParseType(s)
		if err != nil {
			return nil, fmt.Errorf("terminate_sessions_on: %w", err)
		}
		switch t {
		case detect.SessionRevoked, detect.AdminAction, detect.SuccessfulLogin, detect.FailedLogin:
			return nil, fmt.Errorf("terminate_sessions_on: %s cannot end sessions", t)
		}
		out[t] = true
	}
	return out, nil
}
