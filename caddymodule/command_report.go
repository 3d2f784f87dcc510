package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

// reportCommand is `caddy vigil report`: the compliance report of a
// period, from the running Caddy's admin API, as HTML, CSV or JSON.
func reportCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "report [--from 2026-11-01] [--to 2026-12-01] [--format html|csv|json] [--out report.html]",
		Short: "Writes the security and compliance report of a period (default: the last 30 days)",
		Args:  cobra.NoArgs,
		RunE:  runReport,
	}
	f := c.Flags()
	f.String("from", "", "Start of the period: a date (UTC) or an RFC 3339 time")
	f.String("to", "", "End of the period, excluded (default: now)")
	f.String("format", "html", "html, csv or json")
	f.String("out", "", "File to write (default: standard output)")
	return c
}

func runReport(c *cobra.Command, _ []string) error {
	q := url.Values{}
	for _, name := range []string{"from", "to", "format"} {
		if v := flagString(c, name); v != "" {
			q.Set(name, v)
		}
	}
	uri := "/vigil/report?" + q.Encode()
	status, raw, err := adminFetch(c, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return answerError(http.MethodGet, uri, status, raw)
	}
	out := flagString(c, "out")
	if out == "" {
		_, err = c.OutOrStdout().Write(raw)
		return err
	}
	if err := os.WriteFile(out, raw, 0o600); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	fmt.Fprintf(c.ErrOrStderr(), "report written to %s (%d bytes)\n", out, len(raw))
	return nil
}
