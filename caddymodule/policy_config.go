package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vigilsec/vigil/detect"
	loginpkg "github.com/vigilsec/vigil/detect/login"
	"github.com/vigilsec/vigil/internal/cli"
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

// The start-up line of each site: what Vigil enforces there, as Caddy read
// it. An operator who reloads a config sees at once that a threshold took
// (or that the site is only monitoring) without reading the JSON.

// msgPolicy is the message of the policy line.
const msgPolicy = "vigil policy"

// logPolicy logs the site's policy once it is provisioned, and passes err
// through: provision ends with `return h.logPolicy(h.buildPipeline(ctx))`,
// so a config that failed to provision never announces a policy.
func (h *Handler) logPolicy(err error) error {
	if err != nil || h.logger == nil {
		return err
	}
	if ce := h.logger.Check(zap.InfoLevel, msgPolicy); ce != nil {
		ce.Write(h.policyFields()...)
	}
	return nil
}

// policyFields is the site's policy as structured log fields.
func (h *Handler) policyFields() []zapcore.Field {
	site := h.Site
	if site == "" {
		site = "(each request's Host)"
	}
	logins := make([]string, len(h.Logins))
	for i, l := range h.Logins {
		logins[i] = strings.ToUpper(l.Method) + " " + l.Path
	}
	probesOn, sensitivity := "on", "normal"
	if h.Probes != nil {
		if h.Probes.Off {
			probesOn = "off"
		}
		if h.Probes.Sensitivity != "" {
			sensitivity = h.Probes.Sensitivity
		}
	}
	fields := []zapcore.Field{
		zap.String("site", site),
		zap.Strings("logins", logins),
		zap.String("lockout", banSummary(h.Lockout)),
		zap.String("block_ip", banSummary(h.BlockIP)),
		zap.String("stuffing", stuffingSummary(h.Stuffing)),
		zap.String("session", sessionSummary(h.Session)),
		zap.Bool("session_required", h.Session != nil && h.Session.JWT != nil && h.Session.JWT.Require),
		zap.Int("restrict_rules", len(h.Restrict)),
		zap.Strings("honeypots", h.Honeypot),
		zap.String("probes", probesOn),
		zap.String("probes_sensitivity", sensitivity),
		zap.String("intrusion_ban", intrusionSummary(h.IntrusionBan)),
		zap.Bool("monitor_only", h.MonitorOnly),
		zap.Bool("location", h.Location != nil),
		zap.String("risk", riskSummary(h.Risk)),
		zap.String("block_network", banSummary(h.BlockNetwork)),
		zap.Bool("spray", h.Spray != nil),
		zap.Bool("distributed", h.Distributed != nil),
	}
	if h.app != nil {
		typ, _ := h.app.storeSummary()
		fields = append(fields, zap.String("store", typ), zap.String("fail_mode", h.app.failMode()))
	}
	return fields
}

// riskSummary is "alert 30, challenge 16, block off".
func riskSummary(r *RiskConfig) string {
	if r == nil {
		return "off"
	}
	step := func(name string, v int) string {
		if v == 0 {
			return name + " off"
		}
		return name + " " + strconv.Itoa(v)
	}
	return step("alert", r.Alert) + ", " + step("challenge", r.Challenge) + ", " + step("block", r.Block)
}

func banSummary(b *BanPolicy) string {
	if b == nil {
		return "off"
	}
	s := fmt.Sprintf("%d within %s for %s", b.Failures, cli.ShortDuration(time.Duration(b.Within)), cli.ShortDuration(time.Duration(b.For)))
	if b.Max > 0 {
		s += " max " + cli.ShortDuration(time.Duration(b.Max))
	}
	return s
}

func stuffingSummary(s *StuffingPolicy) string {
	if s == nil {
		return "off"
	}
	return fmt.Sprintf("%d accounts within %s", s.Accounts, cli.ShortDuration(time.Duration(s.Within)))
}

func sessionSummary(s *SessionConfig) string {
	if s == nil || s.JWT == nil {
		return "off"
	}
	switch {
	case s.JWT.Cookie != "":
		return "jwt cookie " + s.JWT.Cookie
	case s.JWT.Header != "":
		return "jwt header " + s.JWT.Header
	}
	return "jwt header Authorization"
}

func intrusionSummary(b *BanLength) string {
	l := defaultIntrusionBan
	if b != nil {
		l = *b
	}
	s := cli.ShortDuration(time.Duration(l.For))
	if l.Max > 0 {
		s += " max " + cli.ShortDuration(time.Duration(l.Max))
	}
	return s
}
