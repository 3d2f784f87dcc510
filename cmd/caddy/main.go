// Command caddy is Caddy with its standard modules plus Vigil, so
// `go run ./cmd/caddy run --config Caddyfile.example` works from this
// repository without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/vigilsec/vigil/caddymodule"
)

func main() {
	caddycmd.Main()
}
