package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/internal/dashboard"
)

// investigateCommands are `caddy vigil user <name>` and `caddy vigil ip
// <addr>`: the investigation reports of GET /vigil/users/{user} and GET
// /vigil/ips/{ip}, as tables on a terminal and as JSON otherwise.
func investigateCommands() []*cobra.Command {
	user := &cobra.Command{Use: "user <name>", Short: "Investigates an account: logins with place and risk, learned places, data volume, decisions, events",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return adminCallTo(c, http.MethodGet, "/vigil/users/"+url.PathEscape(args[0]), nil, renderUserReport)
		}}
	ip := &cobra.Command{Use: "ip <addr>", Short: "Investigates an address: place, blocks, logins, users, events",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return adminCallTo(c, http.MethodGet, "/vigil/ips/"+url.PathEscape(args[0]), nil, renderIPReport)
		}}
	return []*cobra.Command{user, ip}
}

func renderUserReport(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var rep dashboard.UserReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("reading the report: %w", err)
	}
	fmt.Fprintf(o.w, "User %s\n", clean(rep.User))
	fmt.Fprintf(o.w, "Data (30 days): %d bytes in %d data-access events; learned from %d logins\n\n",
		rep.Data.Bytes, rep.Data.Events, rep.Places.Logins)
	if err := section(o, "Decisions", func() error { return writeDecisions(o, rep.Decisions) }); err != nil {
		return err
	}
	if err := section(o, "Recent logins", func() error { return writeLogins(o, rep.Logins) }); err != nil {
		return err
	}
	err := section(o, "Learned places", func() error {
		tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COUNTRY\tCITY\tASN\tFIRST\tLAST SEEN\tLOGINS")
		for _, p := range rep.Places.Places {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", cell(p.Place.Country, 4), cell(p.Place.City, 30), asn(p.Place.ASN),
				o.time(p.First), o.time(p.Seen), p.Logins)
		}
		return tw.Flush()
	})
	if err != nil {
		return err
	}
	return section(o, "Events", func() error { return writeEvents(o, rep.Events) })
}

func renderIPReport(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var rep dashboard.IPReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("reading the report: %w", err)
	}
	fmt.Fprintf(o.w, "Address %s (network %s)\n", clean(rep.IP), clean(rep.Network))
	if p := rep.Place; p != nil {
		fmt.Fprintf(o.w, "Place: %s %s %s\n", clean(p.Country), clean(p.City), asn(p.ASN))
	}
	fmt.Fprintln(o.w)
	if err := section(o, "Decisions", func() error { return writeDecisions(o, rep.Decisions) }); err != nil {
		return err
	}
	if err := section(o, "Recent logins", func() error { return writeLogins(o, rep.Logins) }); err != nil {
		return err
	}
	err := section(o, "Users seen", func() error {
		tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tEVENTS")
		for _, u := range rep.Users {
			fmt.Fprintf(tw, "%s\t%d\n", cell(u.Key, 40), u.Count)
		}
		return tw.Flush()
	})
	if err != nil {
		return err
	}
	return section(o, "Events", func() error { return writeEvents(o, rep.Events) })
}

func section(o output, title string, body func() error) error {
	fmt.Fprintf(o.w, "%s:\n", title)
	if err := body(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(o.w)
	return err
}

func writeLogins(o output, ls []dashboard.Login) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintln(o.w, "No logins.")
		return err
	}
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tOUTCOME\tUSER\tIP\tCOUNTRY\tCITY\tASN\tRISK")
	for _, l := range ls {
		risk := ""
		if l.Risk != nil {
			risk = clean(fmt.Sprint(l.Risk))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.time(l.Time), cell(string(l.Type), 20), cell(l.User, 24),
			cell(l.IP, 39), cell(l.Country, 4), cell(l.City, 24), asn(l.ASN), risk)
	}
	return tw.Flush()
}

func asn(n uint) string {
	if n == 0 {
		return ""
	}
	return "AS" + strconv.FormatUint(uint64(n), 10)
}
