// Command vigil-demo is the one-command Vigil demo: it starts the demo app
// and, in front of it, Caddy with the Vigil module (in-memory store, no
// Redis, no GeoIP), then prints what to try.
//
//	go run ./cmd/vigil-demo
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/vigilsec/vigil/caddymodule"
	"github.com/vigilsec/vigil/internal/demoapp"
)

// caddyfile is the demo policy, written with the default addresses, which
// run() replaces with the flag values.
//
//go:embed Caddyfile
var caddyfile string

const (
	defaultListen = "127.0.0.1:8080"
	defaultApp    = "127.0.0.1:9080"
	defaultAdmin  = "localhost:2019"
	demoSecret    = "demo-secret-replaced-at-start-by-vigil-demo"
)

// randomSecret is this run's JWT signing secret, shared by the demo app
// (which signs) and the gateway (which verifies).
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func main() {
	listen := flag.String("listen", defaultListen, "gateway (Caddy + Vigil) listen address")
	app := flag.String("app", defaultApp, "demo app listen address (the upstream)")
	admin := flag.String("admin", defaultAdmin, "Caddy admin API address (Vigil's admin routes live here)")
	flag.Parse()
	if err := run(*listen, *app, *admin); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-demo:", err)
		os.Exit(1)
	}
}

func run(listen, appAddr, admin string) error {
	// 1. The demo app, the upstream.
	ln, err := net.Listen("tcp", appAddr)
	if err != nil {
		return fmt.Errorf("demo app: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "demoapp")
	secret := randomSecret()
	srv := &http.Server{
		Handler:           demoapp.New(demoapp.Options{Logger: logger, JWTSecret: []byte(secret)}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("demo app stopped", "error", err)
		}
	}()
	defer srv.Close()

	// 2. Caddy with Vigil in front of it, configured from the Caddyfile.
	site, bind := siteAndBind(listen)
	cfgText := strings.NewReplacer(
		defaultAdmin, admin,
		defaultListen, site,
		"bind 127.0.0.1", bind,
		defaultApp, appAddr,
		demoSecret, secret,
	).Replace(caddyfile)
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfgText), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting Caddyfile: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "caddyfile warning:", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		return fmt.Errorf("starting Caddy: %w", err)
	}

	printInstructions(httpURL(listen), httpURL(appAddr), admin)

	// 3. Run until interrupted.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nvigil-demo: shutting down")
	if err := caddy.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-demo: stopping Caddy:", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// siteAndBind returns the Caddyfile site address and bind line for a listen
// address: a wildcard host (":8080", "0.0.0.0:8080") serves every Host on
// every interface; any other host is both the site and the bind address.
func siteAndBind(listen string) (site, bind string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen, "bind 127.0.0.1"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return ":" + port, ""
	}
	return listen, "bind " + host
}

// httpURL turns a listen address into a URL a client can use: an empty or
// wildcard host becomes 127.0.0.1.
func httpURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func printInstructions(gw, app, admin string) {
	fmt.Printf(`
Vigil demo is running.

  gateway (Caddy + Vigil)  %[1]s/      <- use this one
  demo app (upstream)      %[2]s/      (no protection of its own)
  Caddy admin API          %[3]s        (Vigil routes under /vigil/)

Users: alice/wonderland, bob/builder, carol/secret123.
Policy: lock an account after 5 failures in 10m (1m, doubling up to 1h),
block an IP after 20 failures in 10m, flag stuffing at 10 accounts per IP.

1. A good login (302 to /dashboard with a session cookie):
   curl -si -d 'username=bob&password=builder' %[1]s/login | head -n 5

2. Brute force: five failures pass (302), the sixth is refused (429)
   and never reaches the app, even with the right password:
   for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%%{http_code}\n' -d 'username=alice&password=wrong' %[1]s/login; done
   curl -s -o /dev/null -w '%%{http_code}\n' -d 'username=alice&password=wonderland' %[1]s/login

3. The same over the JSON API (user at user.name):
   curl -s -H 'Content-Type: application/json' -d '{"user":{"name":"carol"},"password":"secret123"}' %[1]s/api/login

4. What Vigil decided, and what it recorded:
   curl -s %[3]s/vigil/decisions
   curl -s '%[3]s/vigil/events?limit=5'

5. Unlock alice, and log in again:
   curl -X DELETE %[3]s/vigil/locks/alice
   curl -s -o /dev/null -w '%%{http_code}\n' -d 'username=alice&password=wonderland' %[1]s/login

6. Sessions: the app's JWT identifies carol at the gateway (passed upstream
   as X-Vigil-User); revoke her sessions and the same token gets 401:
   TOKEN=$(curl -s -H 'Content-Type: application/json' -d '{"user":{"name":"carol"},"password":"secret123"}' %[1]s/api/login | sed -E 's/.*"token":"([^"]+)".*/\1/')
   curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/me
   curl -s -X POST -H 'Content-Type: application/json' -d '{"user":"carol"}' %[3]s/vigil/revocations
   curl -si -H "Authorization: Bearer $TOKEN" %[1]s/api/me | head -n 3

7. Probes: a honeypot hit (or /.env, or a scanner's User-Agent) blocks the
   address at once — yours, so unblock it afterwards:
   curl -s -o /dev/null -w '%%{http_code}\n' %[1]s/wp-login.php
   curl -s -o /dev/null -w '%%{http_code}\n' %[1]s/
   curl -X DELETE %[3]s/vigil/blocks/127.0.0.1

Press Ctrl-C to stop.
`, gw, app, admin)
}
