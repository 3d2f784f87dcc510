// Package vigil is the root of the Vigil module. It exists so that Caddy can
// be built with Vigil by module path alone:
//
//	xcaddy build --with github.com/vigilsec/vigil
//
// xcaddy imports the module path itself; this package imports caddymodule,
// whose init functions register Vigil's Caddy modules (the vigil app, the
// vigil handler, the admin API routes, the Caddyfile directives and the
// `caddy vigil` subcommands). It has no API of its own.
package vigil

import (
	// Vigil's Caddy modules register themselves on import.
	_ "github.com/vigilsec/vigil/caddymodule"
)
