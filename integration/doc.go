// Package integration holds Vigil's end-to-end tests: they build the real
// Caddy binary (./cmd/caddy), run it as a separate process with a
// Caddyfile, put the demo app (internal/demoapp) behind it and talk to it
// over loopback HTTP, through the admin API and through the `caddy vigil`
// subcommands. Tests about the shared store use a real Redis.
//
// Environment:
//
//	VIGIL_REDIS_ADDR=host:port  Redis to use (default 127.0.0.1:6379; when it
//	                            does not answer, a redis-server from PATH is
//	                            started on a free port)
//	VIGIL_REQUIRE_REDIS=1       fail, rather than skip, the Redis tests when
//	                            no Redis can be had
//	VIGIL_CADDY_RACE=1          build the gateway under test with -race; a data
//	                            race then crashes it and fails the test
//	VIGIL_REQUIRE_TOOLS=1       fail, rather than skip, the tests that drive
//	                            real attack tools (hydra, ffuf) when those are
//	                            not installed
//
// Everything lives in _test.go files; this file only names the package.
package integration
