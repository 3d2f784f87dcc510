package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/internal/cli"
)

// How a `caddy vigil` subcommand reaches the admin API: the endpoint is
// the one Caddy's own CLI would use (--address, else the admin address of
// --config, else the default), dialled the way Caddy dials it.

// envOf is what a run of c works with: its admin API, its output (a table
// on a terminal unless --json) and standard error for notes.
func envOf(c *cobra.Command) cli.Env {
	asJSON, _ := c.Flags().GetBool("json")
	return cli.Env{Admin: adminClient{c}, Out: cli.NewOutput(c.OutOrStdout(), asJSON), Notes: c.ErrOrStderr()}
}

// adminClient is cli.Admin for one run of a subcommand: it reads the
// endpoint from the command's flags and calls it within the command's
// context.
type adminClient struct{ c *cobra.Command }

// adminTimeout bounds one admin API call.
const adminTimeout = 30 * time.Second

// address is the admin endpoint the command's flags name.
func (a adminClient) address() (string, error) {
	c := a.c
	addr, err := caddycmd.DetermineAdminAPIAddress(flagString(c, "address"), nil, flagString(c, "config"), flagString(c, "adapter"))
	if err != nil {
		return "", fmt.Errorf("finding the admin address: %w", err)
	}
	return addr, nil
}

// Fetch sends one admin API request and returns the status and body,
// whatever the status: Caddy's own AdminAPIRequest turns every answer from
// 400 up into an error, and the health check's 503 carries a report.
func (a adminClient) Fetch(method, uri string, body any) (int, []byte, error) {
	addr, err := a.address()
	if err != nil {
		return 0, nil, err
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
	parent := a.c.Context()
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

// Stream sends one admin API request with body as it is; the caller
// closes the answer. Caddy's client makes an answer from 400 up an error
// that carries the API's message.
func (a adminClient) Stream(method, uri string, header http.Header, body io.Reader) (*http.Response, error) {
	addr, err := a.address()
	if err != nil {
		return nil, err
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, header, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, strings.SplitN(uri, "?", 2)[0], err)
	}
	return resp, nil
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
