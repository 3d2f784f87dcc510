package cli

import (
	"fmt"
	"strconv"

	"github.com/vigilsec/vigil/detect/geo"
	"github.com/vigilsec/vigil/internal/dashboard"
)

// The investigation reports of `caddy vigil user <name>` and `caddy vigil
// ip <addr>` (GET /vigil/users/{user} and GET /vigil/ips/{ip}), as tables
// on a terminal and as JSON otherwise: a heading, then titled sections.

// RenderUserReport prints GET /vigil/users/{user}.
func RenderUserReport(o Output, raw []byte) error {
	return asTable(o, raw, "the report", func(rep dashboard.UserReport) error {
		fmt.Fprintf(o.W, "User %s\n", clean(rep.User))
		fmt.Fprintf(o.W, "Data (30 days): %d bytes in %d data-access events; learned from %d logins\n\n",
			rep.Data.Bytes, rep.Data.Events, rep.Places.Logins)
		return sections(o, []section{
			{"Decisions", func() error { return writeDecisions(o, rep.Decisions) }},
			{"Recent logins", func() error { return writeLogins(o, rep.Logins) }},
			{"Learned places", func() error { return writePlaces(o, rep.Places.Places) }},
			{"Events", func() error { return writeEvents(o, rep.Events) }},
		})
	})
}

// RenderIPReport prints GET /vigil/ips/{ip}.
func RenderIPReport(o Output, raw []byte) error {
	return asTable(o, raw, "the report", func(rep dashboard.IPReport) error {
		fmt.Fprintf(o.W, "Address %s (network %s)\n", clean(rep.IP), clean(rep.Network))
		if p := rep.Place; p != nil {
			fmt.Fprintf(o.W, "Place: %s %s %s\n", clean(p.Country), clean(p.City), asn(p.ASN))
		}
		fmt.Fprintln(o.W)
		return sections(o, []section{
			{"Decisions", func() error { return writeDecisions(o, rep.Decisions) }},
			{"Recent logins", func() error { return writeLogins(o, rep.Logins) }},
			{"Users seen", func() error { return writeUsers(o, rep.Users) }},
			{"Events", func() error { return writeEvents(o, rep.Events) }},
		})
	})
}

// section is a titled part of a report.
type section struct {
	title string
	write func() error
}

// sections prints the parts of a report in order, each under its title
// and followed by a blank line, up to the first that fails.
func sections(o Output, parts []section) error {
	for _, p := range parts {
		fmt.Fprintf(o.W, "%s:\n", p.title)
		if err := p.write(); err != nil {
			return err
		}
		if _, err := fmt.Fprintln(o.W); err != nil {
			return err
		}
	}
	return nil
}

// writeLogins is the logins table, with the place and risk of each.
func writeLogins(o Output, ls []dashboard.Login) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintln(o.W, "No logins.")
		return err
	}
	tw := newTable(o, "TIME\tOUTCOME\tUSER\tIP\tCOUNTRY\tCITY\tASN\tRISK")
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

// writePlaces is the table of the places an account's logins taught.
func writePlaces(o Output, ps []geo.KnownPlace) error {
	tw := newTable(o, "COUNTRY\tCITY\tASN\tFIRST\tLAST SEEN\tLOGINS")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", cell(p.Place.Country, 4), cell(p.Place.City, 30), asn(p.Place.ASN),
			o.time(p.First), o.time(p.Seen), p.Logins)
	}
	return tw.Flush()
}

// writeUsers is the table of the users seen from an address.
func writeUsers(o Output, us []dashboard.Count) error {
	tw := newTable(o, "USER\tEVENTS")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%d\n", cell(u.Key, 40), u.Count)
	}
	return tw.Flush()
}

// asn prints an autonomous system number as AS64496, empty when unknown.
func asn(n uint) string {
	if n == 0 {
		return ""
	}
	return "AS" + strconv.FormatUint(uint64(n), 10)
}
