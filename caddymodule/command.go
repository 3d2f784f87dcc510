package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "vigil",
		Usage: "<status|decisions|why|block|unblock|lock|unlock|revoke|unrevoke|events> [args] [--json] [--address <admin>]",
		Short: "Inspects and changes Vigil's blocks, locks, session revocations and events on a running Caddy",
		Long: `
Talks to the Vigil admin API of a running Caddy (localhost:2019 unless
--address, or the admin address of --config, says otherwise).

Answers are printed as tables when standard output is a terminal and as the
admin API's JSON otherwise (pipes, scripts); --json always prints JSON.

  caddy vigil status                                          (store health, queues; exit 1 when the store is down)
  caddy vigil decisions
  caddy vigil why 203.0.113.7 | alice [--window 1h]           (the decisions on a subject and the events behind them)
  caddy vigil block 203.0.113.7 [--duration 1h] [--reason "…"]
  caddy vigil block 198.51.100.0/24
  caddy vigil unblock 203.0.113.7
  caddy vigil lock alice [--duration 30m]
  caddy vigil unlock alice
  caddy vigil revoke alice [--reason "…"] [--duration 24h]   (every session of alice issued until now)
  caddy vigil revoke --jti 8f14e45f…                         (one token)
  caddy vigil unrevoke alice | --jti 8f14e45f…
  caddy vigil events [--type FAILED_LOGIN] [--user alice] [--ip …] [--severity HIGH] [--since 1h] [--limit 50]
  caddy vigil audit verify [--pub audit.pub] <file>... | --chain <path>   (offline; exit 1 on a broken record)
  caddy vigil user alice | caddy vigil ip 203.0.113.7            (investigation: logins, places, decisions, events)
  caddy vigil report [--from 2026-11-01] [--to 2026-12-01] [--format html|csv|json] [--out report.html]
`,
		CobraFunc: buildVigilCommand,
	})
}

// buildVigilCommand adds the subcommands to `caddy vigil`. Another file
// hangs its own under one of them (decisions import|export) with one line
// here, which is why each subcommand is a named value.
func buildVigilCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "The address of Caddy's admin endpoint")
	pf.StringP("config", "c", "", "Configuration file whose admin address to use")
	pf.StringP("adapter", "a", "", "Name of the config adapter to use with --config")
	pf.Bool("json", false, "Print the admin API's JSON even on a terminal")

	decisions := &cobra.Command{Use: "decisions", Short: "Lists active blocks, locks and revocations", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return adminCall(c, http.MethodGet, "/vigil/decisions", nil)
		}}
	decisionsTransfer(decisions) // command_decisions.go: --kind, --target, export, import
	cmd.AddCommand(decisions, statusCommand(), whyCommand(), eventsCommand(), reportCommand(), auditCommand())
	cmd.AddCommand(decisionCommands()...)
	cmd.AddCommand(revocationCommands()...)
	cmd.AddCommand(investigateCommands()...) // command_investigate.go: user, ip
}

// decisionCommands are block, unblock, lock and unlock.
func decisionCommands() []*cobra.Command {
	block := &cobra.Command{Use: "block <ip-or-cidr>", Short: "Blocks an address or range", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body := decisionRequest{IP: args[0], Duration: flagString(c, "duration"), Reason: flagString(c, "reason")}
			if strings.ContainsRune(args[0], '/') {
				body.IP, body.CIDR = "", args[0]
			}
			return adminCall(c, http.MethodPost, "/vigil/blocks", body)
		}}
	lock := &cobra.Command{Use: "lock <user>", Short: "Locks an account", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body := decisionRequest{User: args[0], Duration: flagString(c, "duration"), Reason: flagString(c, "reason")}
			return adminCall(c, http.MethodPost, "/vigil/locks", body)
		}}
	for _, c := range []*cobra.Command{block, lock} {
		c.Flags().String("duration", "24h", "How long the decision lasts")
		c.Flags().String("reason", "", "Why (recorded in the decision and the audit event)")
	}
	unblock := &cobra.Command{Use: "unblock <ip-or-cidr>", Short: "Lifts a block", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return adminCall(c, http.MethodDelete, "/vigil/blocks/"+url.PathEscape(args[0]), nil)
		}}
	unlock := &cobra.Command{Use: "unlock <user>", Short: "Lifts an account lock", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return adminCall(c, http.MethodDelete, "/vigil/locks/"+url.PathEscape(args[0]), nil)
		}}
	return []*cobra.Command{block, unblock, lock, unlock}
}

// eventFilters are the query parameters of `caddy vigil events`.
var eventFilters = []string{"type", "user", "ip", "severity", "since", "until", "limit", "cursor"}

func eventsCommand() *cobra.Command {
	events := &cobra.Command{Use: "events", Short: "Queries recorded security events, newest first", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			q := url.Values{}
			for _, name := range eventFilters {
				if v := flagString(c, name); v != "" {
					q.Set(name, v)
				}
			}
			return adminCall(c, http.MethodGet, "/vigil/events?"+q.Encode(), nil)
		}}
	for _, name := range eventFilters {
		events.Flags().String(name, "", "Filter: "+name)
	}
	return events
}

// revocationCommands are revoke and unrevoke.
func revocationCommands() []*cobra.Command {
	revoke := &cobra.Command{Use: "revoke <user> | --jti <id>", Short: "Terminates a user's sessions, or one token", Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body := revocationRequest{JTI: flagString(c, "jti"), Duration: flagString(c, "duration"), Reason: flagString(c, "reason")}
			if len(args) == 1 {
				body.User = args[0]
			}
			if (body.User == "") == (body.JTI == "") {
				return fmt.Errorf("give a user or --jti, not both")
			}
			return adminCall(c, http.MethodPost, "/vigil/revocations", body)
		}}
	revoke.Flags().String("jti", "", "Revoke the one token with this ID")
	revoke.Flags().String("duration", "", "How long the revocation lasts (default: the longest token lifetime)")
	revoke.Flags().String("reason", "", "Why (recorded in the revocation and the audit event)")
	unrevoke := &cobra.Command{Use: "unrevoke <user> | --jti <id>", Short: "Lifts a session revocation", Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			jti := flagString(c, "jti")
			if (len(args) == 1) == (jti != "") {
				return fmt.Errorf("give a user or --jti, not both")
			}
			if jti != "" {
				return adminCall(c, http.MethodDelete, "/vigil/revocations/jti/"+url.PathEscape(jti), nil)
			}
			return adminCall(c, http.MethodDelete, "/vigil/revocations/user/"+url.PathEscape(args[0]), nil)
		}}
	unrevoke.Flags().String("jti", "", "Lift the revocation of this token ID")
	return []*cobra.Command{revoke, unrevoke}
}

// errStoreDown makes `caddy vigil status` exit non-zero when the store does
// not answer, so scripts and probes can use it.
var errStoreDown = errors.New("vigil store not reachable")

func statusCommand() *cobra.Command {
	return &cobra.Command{Use: "status", Aliases: []string{"health"}, Short: "Shows the store's health and what waits in the queues", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			status, raw, err := adminFetch(c, http.MethodGet, "/vigil/health", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK && status != http.StatusServiceUnavailable {
				return answerError(http.MethodGet, "/vigil/health", status, raw)
			}
			if err := renderHealth(outputOf(c), raw); err != nil {
				return err
			}
			if status != http.StatusOK {
				return errStoreDown
			}
			return nil
		}}
}

func flagString(c *cobra.Command, name string) string {
	v, _ := c.Flags().GetString(name)
	return v
}

// adminCall sends one admin API request and prints the answer: as a table
// of its kind (decisions, a decision, events, a lift) on a terminal, else
// as JSON. Subcommands in other files use it too.
func adminCall(c *cobra.Command, method, uri string, body any) error {
	return adminCallTo(c, method, uri, body, renderAuto)
}

// adminCallTo sends one admin API request and prints its answer with
// render (JSON when asked or when not on a terminal). An error answer is
// returned as an error carrying the status and the API's message.
func adminCallTo(c *cobra.Command, method, uri string, body any, render renderFunc) error {
	status, raw, err := adminFetch(c, method, uri, body)
	if err != nil {
		return err
	}
	if status >= 400 {
		return answerError(method, uri, status, raw)
	}
	return render(outputOf(c), raw)
}

// adminTimeout bounds one admin API call.
const adminTimeout = 30 * time.Second

// adminFetch sends one admin API request and returns the status and body,
// whatever the status: Caddy's own AdminAPIRequest turns every answer from
// 400 up into an error, and the health check's 503 carries a report.
func adminFetch(c *cobra.Command, method, uri string, body any) (int, []byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(flagString(c, "address"), nil, flagString(c, "config"), flagString(c, "adapter"))
	if err != nil {
		return 0, nil, fmt.Errorf("finding the admin address: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, client, err := adminRequest(addr, method, uri, rd)
	if err != nil {
		return 0, nil, err
	}
	parent := c.Context()
	if parent == nil { // not run through ExecuteContext
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, adminTimeout)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, fmt.Errorf("calling the admin API at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// adminRequest builds a request to the admin endpoint at addr (TCP, or a
// unix socket) and a client that dials it, as Caddy's CLI does: with an
// Origin header the admin endpoint's origin check accepts.
func adminRequest(addr, method, uri string, body io.Reader) (*http.Request, *http.Client, error) {
	parsed, err := caddy.ParseNetworkAddress(addr)
	if err != nil || parsed.PortRangeSize() > 1 {
		return nil, nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	origin, network, dial := "http://"+parsed.JoinHostPort(0), parsed.Network, parsed.JoinHostPort(0)
	local := parsed.IsUnixNetwork() || parsed.IsFdNetwork()
	if local {
		// any Host does; 127.0.0.1 keeps a confused client on this machine.
		// A socket path may carry its permission bits ("|0220"): not part of it
		origin = "http://127.0.0.1"
		dial, _, _ = strings.Cut(parsed.Host, "|")
	}
	req, err := http.NewRequest(method, origin+uri, body)
	if err != nil {
		return nil, nil, fmt.Errorf("making the request: %w", err)
	}
	if !local {
		req.Header.Set("Origin", origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, dial)
		},
	}}
	return req, client, nil
}

// answerError is the error of an admin API answer from 400 up: its status
// and the API's own message.
func answerError(method, uri string, status int, raw []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	path, _, _ := strings.Cut(uri, "?")
	return fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, msg)
}
