package caddymodule

import (
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestPolicySummary(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	off := false
	h := &Handler{
		Site:     "shop",
		Logins:   []LoginRoute{{Method: "post", Path: "/login", User: UserSource{From: "form", Name: "username"}}},
		Lockout:  &BanPolicy{Failures: 5, Within: caddy.Duration(15 * time.Minute), For: caddy.Duration(15 * time.Minute), Max: caddy.Duration(24 * time.Hour)},
		Stuffing: &StuffingPolicy{Accounts: 10, Within: caddy.Duration(10 * time.Minute)},
		Session:  &SessionConfig{JWT: &JWTConfig{Cookie: "sid", Require: true}},
		Restrict: []RestrictRule{{Path: "/admin/*", Roles: []string{"admin"}}},
		Honeypot: []string{"/wp-admin/*"},
		Probes:   &ProbesConfig{Sensitivity: "high", Signatures: &off},
		logger:   zap.New(core),
	}
	if err := h.logPolicy(nil); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 1 {
		t.Fatalf("%d lines", logs.Len())
	}
	got := logs.All()[0].ContextMap()
	for k, want := range map[string]any{
		"site": "shop", "lockout": "5 within 15m for 15m max 24h", "block_ip": "off",
		"stuffing": "10 accounts within 10m", "session": "jwt cookie sid", "session_required": true,
		"restrict_rules": int64(1), "probes": "on", "probes_sensitivity": "high",
		"intrusion_ban": "1h max 24h", "monitor_only": false,
	} {
		if got[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], want)
		}
	}
	if l, ok := got["logins"].([]any); !ok || len(l) != 1 || l[0] != "POST /login" {
		t.Errorf("logins = %v", got["logins"])
	}

	// a config that failed never announces a policy, and keeps its error
	boom := errors.New("boom")
	if err := h.logPolicy(boom); err != boom || logs.Len() != 1 {
		t.Fatalf("err %v, %d lines", err, logs.Len())
	}
}

// TestPolicySummaryAtProvision: provisioning a site logs its policy.
func TestPolicySummaryAtProvision(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := &Handler{MonitorOnly: true, logger: zap.New(core)}
	if err := h.setup(testApp(t)); err != nil {
		t.Fatal(err)
	}
	lines := logs.FilterMessage(msgPolicy).All()
	if len(lines) != 1 || lines[0].ContextMap()["monitor_only"] != true || lines[0].ContextMap()["store"] != "memory" {
		t.Fatalf("%+v", logs.All())
	}
}
