package caddymodule

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/respond"
)

// `caddy vigil decisions [--kind] [--target]`, and its export and import.
// The bodies go to and from the admin API as they are, streamed (an export
// of a million decisions is not held whole), and never re-encoded: a CSV
// file reaches the API byte for byte, so its line numbers are the file's.

// decisionsTransfer adds the kind and target filters to the decisions
// command and hangs export and import under it.
func decisionsTransfer(decisions *cobra.Command) {
	filterFlags(decisions)
	decisions.RunE = func(c *cobra.Command, _ []string) error {
		return adminCall(c, http.MethodGet, "/vigil/decisions"+filterQuery(c, nil), nil)
	}
	export := &cobra.Command{Use: "export", Short: "Writes the active decisions in Vigil's JSON or a CrowdSec format", Args: cobra.NoArgs,
		RunE: runExport}
	filterFlags(export)
	export.Flags().String("format", "vigil", "vigil, crowdsec-csv or crowdsec-json (the CrowdSec formats hold blocks only)")
	export.Flags().String("out", "", "Write to this file instead of standard output")
	imp := &cobra.Command{Use: "import <file|->", Short: "Imports decisions from a file (- for standard input)", Args: cobra.ExactArgs(1),
		RunE: runImport}
	imp.Flags().String("format", "", "vigil, crowdsec-csv or crowdsec-json (default: from the file's extension and content)")
	decisions.AddCommand(export, imp)
}

func filterFlags(c *cobra.Command) {
	c.Flags().String("kind", "", "Only these kinds: block, lock, revoke_user, revoke_jti (comma-separated)")
	c.Flags().String("target", "", "Only the decisions on this address, range, user or token ID")
}

// filterQuery is the query string of the command's filters, plus extra.
func filterQuery(c *cobra.Command, extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	for _, name := range []string{"kind", "target"} {
		if v := flagString(c, name); v != "" {
			q.Set(name, v)
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// adminStream sends one admin API request with body as it is; the caller
// closes the answer. Caddy's client makes an answer from 400 up an error
// that carries the API's message.
func adminStream(c *cobra.Command, method, uri string, header http.Header, body io.Reader) (*http.Response, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(flagString(c, "address"), nil, flagString(c, "config"), flagString(c, "adapter"))
	if err != nil {
		return nil, fmt.Errorf("finding the admin address: %w", err)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, header, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, strings.SplitN(uri, "?", 2)[0], err)
	}
	return resp, nil
}

func runExport(c *cobra.Command, _ []string) error {
	format, err := respond.ParseFormat(flagString(c, "format"))
	if err != nil {
		return err
	}
	resp, err := adminStream(c, http.MethodGet, "/vigil/decisions/export"+filterQuery(c, url.Values{"format": {string(format)}}), nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if path := flagString(c, "out"); path != "" && path != "-" {
		err = writeExport(path, resp.Body)
	} else if _, err = io.Copy(c.OutOrStdout(), resp.Body); err != nil {
		err = fmt.Errorf("writing the export: %w", err)
	}
	if n := resp.Header.Get("X-Vigil-Skipped"); err == nil && n != "" && n != "0" {
		fmt.Fprintf(c.ErrOrStderr(), "%s locks and revocations left out: the CrowdSec formats hold blocks only\n", n)
	}
	return err
}

// writeExport writes an export to a file only its owner reads (decisions
// name users), and removes what it wrote if the export broke off.
func writeExport(path string, body io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the export: %w", err)
	}
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func runImport(c *cobra.Command, args []string) error {
	in := c.InOrStdin()
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("opening the import: %w", err)
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, respond.MaxImportBytes+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", args[0], err)
	}
	if len(data) > respond.MaxImportBytes {
		return fmt.Errorf("%s: an import is at most %d MiB", args[0], respond.MaxImportBytes>>20)
	}
	format, err := respond.ParseFormat(cmp.Or(flagString(c, "format"), guessFormat(args[0], data)))
	if err != nil {
		return err
	}
	ctype := "application/json"
	if format == respond.FormatCrowdSecCSV {
		ctype = "text/csv"
	}
	resp, err := adminStream(c, http.MethodPost, "/vigil/decisions/import?format="+string(format),
		http.Header{"Content-Type": {ctype}}, bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return renderJSON(outputOf(c), raw)
}

// guessFormat tells the format of a file given without --format: CSV by
// its extension, CrowdSec's JSON by items that carry a "value" and no
// "kind", Vigil's JSON otherwise.
func guessFormat(name string, data []byte) string {
	if strings.EqualFold(filepath.Ext(name), ".csv") {
		return string(respond.FormatCrowdSecCSV)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var first map[string]json.RawMessage
	if tok, err := dec.Token(); err == nil && tok == json.Delim('[') && dec.Decode(&first) == nil {
		_, value := first["value"]
		_, kind := first["kind"]
		if value && !kind {
			return string(respond.FormatCrowdSecJSON)
		}
	}
	return string(respond.FormatVigil)
}
