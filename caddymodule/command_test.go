package caddymodule

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/internal/cli"
	"github.com/vigilsec/vigil/respond"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// columnPadding is the run of spaces that pads a table's column.
var columnPadding = regexp.MustCompile(" +")

// TestHealthText: `caddy vigil status` prints the admin API's health
// report, read from this package's own type (the CLI reads the JSON with a
// type of its own, which must agree field for field).
func TestHealthText(t *testing.T) {
	down := testNow.Add(-12 * time.Second)
	sync := testNow.Add(-3 * time.Second)
	for _, c := range []struct {
		rep  respond.HealthReport
		want []string
	}{{
		rep: respond.HealthReport{Status: "ok", Message: "vigil store reachable",
			Store:  respond.StoreHealth{Type: "redis", Address: "127.0.0.1:6379", Reachable: true, LatencyMS: 0.42, FailMode: "open", LastResync: &sync},
			Queues: respond.QueuesHealth{Events: 1, Log: 2, Alerts: map[string]int{"webhook": 3, "email": 0}}},
		want: []string{
			"status ok: vigil store reachable",
			"store redis 127.0.0.1:6379",
			"reachable yes (0.4 ms)",
			"local fallback no",
			"fail_mode open",
			"last resync 2026-01-02 03:04:02 (3s ago)",
			"queued events 1 for the store, 2 for the log",
			"queued alerts email 0, webhook 3",
		},
	}, {
		rep: respond.HealthReport{Status: "failing_open", Message: msgStoreDownOpen,
			Store: respond.StoreHealth{Type: "redis", Address: "10.0.0.9:6379", Error: "dial tcp 10.0.0.9:6379: connection refused",
				FallbackActive: true, FailMode: "open", DownSince: &down}},
		want: []string{
			"status failing_open: " + msgStoreDownOpen,
			"store redis 10.0.0.9:6379",
			"reachable no: dial tcp 10.0.0.9:6379: connection refused",
			"local fallback active since 2026-01-02 03:03:53 (12s)",
			"fail_mode open",
			"queued events 0 for the store, 0 for the log",
			"queued alerts no alert channels",
		},
	}} {
		raw, _ := json.Marshal(c.rep)
		var b bytes.Buffer
		if err := cli.RenderHealth(cli.Output{W: &b, Table: true, Now: testNow, Loc: time.UTC}, raw); err != nil {
			t.Fatal(err)
		}
		// the columns' padding folded to one space
		got := columnPadding.ReplaceAllString(strings.TrimRight(b.String(), "\n"), " ")
		if got != strings.Join(c.want, "\n") {
			t.Fatalf("health:\n%s\nwant:\n%s", got, strings.Join(c.want, "\n"))
		}
	}
}

func TestIsValidateCommand(t *testing.T) {
	for args, want := range map[string]bool{
		"caddy validate --config x":           true,
		"caddy adapt --config x --validate":   true,
		"caddy adapt --validate=true":         true,
		"caddy adapt --config x":              false,
		"caddy run --config x":                false,
		"caddy start":                         false,
		"caddymodule.test -test.run=validate": false,
		"caddy":                               false,
	} {
		if got := isValidateCommand(strings.Fields(args)); got != want {
			t.Errorf("%q: %v, want %v", args, got, want)
		}
	}
}

func TestStoreAddressHidesCredentials(t *testing.T) {
	for cfg, want := range map[*StoreConfig]string{
		{Type: "memory"}: "",
		{Type: "redis", URL: "redis://user:secret@10.0.0.9:6379/0"}:       "10.0.0.9:6379",
		{Type: "redis", URL: "unix:///run/redis.sock"}:                    "/run/redis.sock",
		{Type: "redis", Addrs: []string{"a:1", "b:2"}}:                    "a:1,b:2",
		{Type: "redis", Addrs: []string{"s:26379"}, Sentinel: "mymaster"}: "sentinel mymaster via s:26379",
	} {
		if got := storeAddress(*cfg); got != want {
			t.Errorf("%+v: %q, want %q", cfg, got, want)
		}
	}
}

// TestEnvOf: a subcommand prints to the command's output and notes to its
// standard error, and --json reaches the output.
func TestEnvOf(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().Bool("json", false, "")
	var out, notes bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&notes)
	if e := envOf(cmd); e.Out.W != &out || e.Notes != &notes || e.Out.JSON {
		t.Fatalf("env of a plain run: %+v", e)
	}
	_ = cmd.Flags().Set("json", "true")
	if e := envOf(cmd); !e.Out.JSON || e.Out.Table {
		t.Fatal("--json printed a table")
	}
}
