package caddymodule

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// envPlaceholder finds the {env.NAME} placeholders of a value.
var envPlaceholder = regexp.MustCompile(`\{env\.[^{}]+\}`)

// resolve replaces the placeholders of a secret or path from the config.
// A value that names an {env.*} placeholder and comes out empty is an
// error naming the variable: "the hs256 secret is 0 bytes" would not say
// which variable is unset.
func resolve(repl *caddy.Replacer, what, s string) (string, error) {
	out := repl.ReplaceAll(s, "")
	if out == "" && s != "" {
		if ph := envPlaceholder.FindAllString(s, -1); len(ph) > 0 {
			return "", fmt.Errorf("%s: %s is empty or unset", what, strings.Join(ph, ", "))
		}
	}
	return out, nil
}
