package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "vigil",
		Usage: "<decisions|block|unblock|lock|unlock|revoke|unrevoke|events> [args] [--address <admin>]",
		Short: "Inspects and changes Vigil's blocks, locks, session revocations and events on a running Caddy",
		Long: `
Talks to the Vigil admin API of a running Caddy (localhost:2019 unless
--address, or the admin address of --config, says otherwise).

  caddy vigil decisions
  caddy vigil block 203.0.113.7 [--duration 1h] [--reason "…"]
  caddy vigil block 198.51.100.0/24
  caddy vigil unblock 203.0.113.7
  caddy vigil lock alice [--duration 30m]
  caddy vigil unlock alice
  caddy vigil revoke alice [--reason "…"] [--duration 24h]   (every session of alice issued until now)
  caddy vigil revoke --jti 8f14e45f…                         (one token)
  caddy vigil unrevoke alice | --jti 8f14e45f…
  caddy vigil events [--type FAILED_LOGIN] [--user alice] [--ip …] [--severity HIGH] [--since 1h] [--limit 50]
`,
		CobraFunc: buildVigilCommand,
	})
}

func buildVigilCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "The address of Caddy's admin endpoint")
	pf.StringP("config", "c", "", "Configuration file whose admin address to use")
	pf.StringP("adapter", "a", "", "Name of the config adapter to use with --config")

	decisions := &cobra.Command{Use: "decisions", Short: "Lists active blocks and locks", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return adminCall(c, http.MethodGet, "/vigil/decisions", nil) }}

	block := &cobra.Command{Use: "block <ip-or-cidr>", Short: "Blocks an address or range", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body := decisionRequest{IP: args[0], Duration: flagString(c, "duration"), Reason: flagString(c, "reason")}
			if bytes.ContainsRune([]byte(args[0]), '/') {
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

	events := &cobra.Command{Use: "events", Short: "Queries recorded security events, newest first", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			q := url.Values{}
			for _, name := range []string{"type", "user", "ip", "severity", "since", "until", "limit", "cursor"} {
				if v := flagString(c, name); v != "" {
					q.Set(name, v)
				}
			}
			return adminCall(c, http.MethodGet, "/vigil/events?"+q.Encode(), nil)
		}}
	for _, name := range []string{"type", "user", "ip", "severity", "since", "until", "limit", "cursor"} {
		events.Flags().String(name, "", "Filter: "+name)
	}

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

	cmd.AddCommand(decisions, block, unblock, lock, unlock, revoke, unrevoke, events)
}

func flagString(c *cobra.Command, name string) string {
	v, _ := c.Flags().GetString(name)
	return v
}

// adminCall sends one admin API request and prints the JSON answer.
func adminCall(c *cobra.Command, method, uri string, body any) error {
	addr, err := caddycmd.DetermineAdminAPIAddress(flagString(c, "address"), nil, flagString(c, "config"), flagString(c, "adapter"))
	if err != nil {
		return fmt.Errorf("finding the admin address: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var pretty bytes.Buffer
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	_, err = os.Stdout.Write(pretty.Bytes())
	return err
}
