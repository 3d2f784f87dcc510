// Package cli is what `caddy vigil …` does once its flags are read: it asks
// a running Caddy's admin API, explains the answers (why), renders them as
// tables or JSON, verifies audit files and writes reports and exports.
//
// It imports no Caddy package, as DESIGN.md asks of everything outside
// caddymodule and cmd: caddymodule defines the cobra commands, finds the
// admin endpoint the way Caddy's own CLI does and hands it in as an Admin,
// so this code is tested with plain Go tests and a fake admin API.
package cli
