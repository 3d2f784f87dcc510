package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

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
	s := fmt.Sprintf("%d within %s for %s", b.Failures, shortDuration(time.Duration(b.Within)), shortDuration(time.Duration(b.For)))
	if b.Max > 0 {
		s += " max " + shortDuration(time.Duration(b.Max))
	}
	return s
}

func stuffingSummary(s *StuffingPolicy) string {
	if s == nil {
		return "off"
	}
	return fmt.Sprintf("%d accounts within %s", s.Accounts, shortDuration(time.Duration(s.Within)))
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
	s := shortDuration(time.Duration(l.For))
	if l.Max > 0 {
		s += " max " + shortDuration(time.Duration(l.Max))
	}
	return s
}

// shortDuration prints a duration without the zero units Go adds ("1m"
// rather than "1m0s", "24h" rather than "24h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
