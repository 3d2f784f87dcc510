package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/internal/cli"
)

// The `caddy vigil …` subcommands: their names, arguments and flags, and
// the admin API path each one calls. What they do with the answers lives
// in internal/cli; command_admin.go finds and calls the admin endpoint.

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

// buildVigilCommand adds the subcommands to `caddy vigil`. Each is a named
// value, so another one can hang under it (decisions export|import).
func buildVigilCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "The address of Caddy's admin endpoint")
	pf.StringP("config", "c", "", "Configuration file whose admin address to use")
	pf.StringP("adapter", "a", "", "Name of the config adapter to use with --config")
	pf.Bool("json", false, "Print the admin API's JSON even on a terminal")

	cmd.AddCommand(decisionsCommand(), statusCommand(), whyCommand(), eventsCommand(), reportCommand(), auditCommand())
	cmd.AddCommand(decisionCommands()...)
	cmd.AddCommand(revocationCommands()...)
	cmd.AddCommand(investigateCommands()...)
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

// decisionFilters are the query parameters of `caddy vigil decisions` and
// its export.
var decisionFilters = []string{"kind", "target"}

// decisionsCommand is `caddy vigil decisions [--kind] [--target]`, and
// its export and import.
func decisionsCommand() *cobra.Command {
	decisions := &cobra.Command{Use: "decisions", Short: "Lists active blocks, locks and revocations", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			uri := "/vigil/decisions"
			if q := flagQuery(c, decisionFilters); len(q) > 0 {
				uri += "?" + q.Encode()
			}
			return adminCall(c, http.MethodGet, uri, nil)
		}}
	export := &cobra.Command{Use: "export", Short: "Writes the active decisions in Vigil's JSON or a CrowdSec format", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return envOf(c).Export(flagString(c, "format"), flagQuery(c, decisionFilters), flagString(c, "out"))
		}}
	for _, c := range []*cobra.Command{decisions, export} {
		c.Flags().String("kind", "", "Only these kinds: block, lock, revoke_user, revoke_jti (comma-separated)")
		c.Flags().String("target", "", "Only the decisions on this address, range, user or token ID")
	}
	export.Flags().String("format", "vigil", "vigil, crowdsec-csv or crowdsec-json (the CrowdSec formats hold blocks only)")
	export.Flags().String("out", "", "Write to this file instead of standard output")
	imp := &cobra.Command{Use: "import <file|->", Short: "Imports decisions from a file (- for standard input)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return envOf(c).Import(args[0], flagString(c, "format"), c.InOrStdin())
		}}
	imp.Flags().String("format", "", "vigil, crowdsec-csv or crowdsec-json (default: from the file's extension and content)")
	decisions.AddCommand(export, imp)
	return decisions
}

// eventFilters are the query parameters of `caddy vigil events`.
var eventFilters = []string{"type", "user", "ip", "severity", "since", "until", "limit", "cursor"}

func eventsCommand() *cobra.Command {
	events := &cobra.Command{Use: "events", Short: "Queries recorded security events, newest first", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return adminCall(c, http.MethodGet, "/vigil/events?"+flagQuery(c, eventFilters).Encode(), nil)
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

func statusCommand() *cobra.Command {
	return &cobra.Command{Use: "status", Aliases: []string{"health"}, Short: "Shows the store's health and what waits in the queues", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return envOf(c).Status() }}
}

func whyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "why <ip|cidr|user>", Short: "Explains the active decisions on an address or user and the events behind them",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var opts cli.WhyOptions
			opts.Window, _ = c.Flags().GetDuration("window")
			opts.Limit, _ = c.Flags().GetInt("limit")
			opts.AsUser, _ = c.Flags().GetBool("user")
			return envOf(c).Why(args[0], opts)
		}}
	cmd.Flags().Duration("window", 0, "How far before a decision to look for its causes (default: the window of the rule that made it, else 1h)")
	cmd.Flags().Int("limit", 50, "The most events shown per decision (the newest)")
	cmd.Flags().Bool("user", false, "Read the subject as a username even if it looks like an address")
	return cmd
}

// investigateCommands are `caddy vigil user <name>` and `caddy vigil ip
// <addr>`: the investigation reports of GET /vigil/users/{user} and GET
// /vigil/ips/{ip}.
func investigateCommands() []*cobra.Command {
	user := &cobra.Command{Use: "user <name>", Short: "Investigates an account: logins with place and risk, learned places, data volume, decisions, events",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return envOf(c).Call(http.MethodGet, "/vigil/users/"+url.PathEscape(args[0]), nil, cli.RenderUserReport)
		}}
	ip := &cobra.Command{Use: "ip <addr>", Short: "Investigates an address: place, blocks, logins, users, events",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return envOf(c).Call(http.MethodGet, "/vigil/ips/"+url.PathEscape(args[0]), nil, cli.RenderIPReport)
		}}
	return []*cobra.Command{user, ip}
}

// reportCommand is `caddy vigil report`: the compliance report of a
// period, from the running Caddy's admin API, as HTML, CSV or JSON.
func reportCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "report [--from 2026-11-01] [--to 2026-12-01] [--format html|csv|json] [--out report.html]",
		Short: "Writes the security and compliance report of a period (default: the last 30 days)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return envOf(c).Report(flagQuery(c, []string{"from", "to", "format"}), flagString(c, "out"))
		},
	}
	f := c.Flags()
	f.String("from", "", "Start of the period: a date (UTC) or an RFC 3339 time")
	f.String("to", "", "End of the period, excluded (default: now)")
	f.String("format", "html", "html, csv or json")
	f.String("out", "", "File to write (default: standard output)")
	return c
}

// auditCommand is `caddy vigil audit verify`: an offline check of audit
// files, needing no running Caddy and no private key.
func auditCommand() *cobra.Command {
	verify := &cobra.Command{
		Use:   "verify [--pub audit.pub] <file>... | --chain <path> [--instance <name>]",
		Short: "Verifies audit files: the hash chain and, with --pub, the signed checkpoints; exits 1 and names the first broken record",
		RunE: func(c *cobra.Command, args []string) error {
			err := envOf(c).VerifyAudit(cli.AuditFiles{Files: args, Chain: flagString(c, "chain"),
				Instance: flagString(c, "instance"), PubKey: flagString(c, "pub")})
			if errors.Is(err, cli.ErrAuditBroken) {
				c.SilenceUsage = true // the report said what is broken
			}
			return err
		},
	}
	f := verify.Flags()
	f.String("pub", "", "Ed25519 public key (PKIX PEM) that verifies the checkpoints")
	f.String("chain", "", "The audit_log path: verify every file of the chain (rotated ones included), oldest first")
	f.String("instance", "", "With --chain: the instance whose chain to verify (default: this host's name)")
	c := &cobra.Command{Use: "audit", Short: "Tamper-evident audit trail tools"}
	c.AddCommand(verify)
	return c
}

func flagString(c *cobra.Command, name string) string {
	v, _ := c.Flags().GetString(name)
	return v
}

// flagQuery is the query of the named flags that are set, by name.
func flagQuery(c *cobra.Command, names []string) url.Values {
	q := url.Values{}
	for _, name := range names {
		if v := flagString(c, name); v != "" {
			q.Set(name, v)
		}
	}
	return q
}

// adminCall sends one admin API request and prints the answer: as a table
// of its kind (decisions, a decision, events, a lift) on a terminal, else
// as JSON.
func adminCall(c *cobra.Command, method, uri string, body any) error {
	return envOf(c).Call(method, uri, body, cli.RenderAuto)
}
