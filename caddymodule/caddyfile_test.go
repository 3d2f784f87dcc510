package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

var update = flag.Bool("update", false, "rewrite the golden adapt files")

// TestAdaptGolden adapts every testdata/adapt/*.caddyfile and compares the
// JSON with the .json file next to it (go test -run Golden -update rewrites).
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no golden Caddyfiles found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := adapt(t, in)
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("adapted JSON differs from %s:\n got: %s\nwant: %s", golden, got, want)
			}
		})
	}
}

func adapt(t *testing.T, in []byte) []byte {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if len(warnings) > 0 {
		t.Fatalf("adapter warnings: %v", warnings)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestAdaptErrors checks that bad configs are refused with a message that
// names the directive and the line.
func TestAdaptErrors(t *testing.T) {
	cases := []struct{ name, site, global, want string }{
		{"unknown subdirective", "vigil {\n\tfrobnicate on\n}", "", `unknown vigil subdirective "frobnicate"`},
		{"lockout missing for", "vigil {\n\tlockout 5 within 1m\n}", "", "lockout: want <n> within <duration> for <duration>"},
		{"lockout bad count", "vigil {\n\tlockout x within 1m for 1m\n}", "", `lockout: "x" is not a positive count`},
		{"lockout bad duration", "vigil {\n\tlockout 5 within soon for 1m\n}", "", `lockout: "soon" is not a positive duration`},
		{"max below for", "vigil {\n\tblock_ip 5 within 1m for 1h max 1m\n}", "", "block_ip: max (1m0s) is shorter than for (1h0m0s)"},
		{"stuffing one account", "vigil {\n\tstuffing 1 within 1m\n}", "", "stuffing: \"1\" is not a count of at least 2"},
		{"login no user", "vigil {\n\tlogin POST /login {\n\t\tsuccess status 200\n\t}\n}", "", "a user line is required"},
		{"login bad user", "vigil {\n\tlogin POST /login {\n\t\tuser cookie:x\n\t}\n}", "", `"cookie:x" is not form:<field>`},
		{"login bad path", "vigil {\n\tlogin POST login {\n\t\tuser form:u\n\t}\n}", "", "must start with /"},
		{"login bad status", "vigil {\n\tlogin POST /l {\n\t\tuser form:u\n\t\tsuccess status 2000\n\t}\n}", "", `"2000" is not an HTTP status code`},
		{"login unknown option", "vigil {\n\tlogin POST /l {\n\t\tuser form:u\n\t\tpassword form:p\n\t}\n}", "", `unknown login option "password"`},
		{"bad max_body", "vigil {\n\tmax_body lots\n}", "", "max_body"},
		{"global unknown", "respond 200", "vigil {\n\tfrob\n}", `unknown vigil option "frob"`},
		{"global bad store", "respond 200", "vigil {\n\tstore etcd\n}", `unknown type "etcd"`},
		{"global redis without address", "respond 200", "vigil {\n\tstore redis {\n\t\tprefix x:\n\t}\n}", "give a URL or an addrs line"},
		{"global bad allow", "respond 200", "vigil {\n\tallow 10.0.0.0/33\n}", "invalid CIDR"},
		{"global bad fail_mode", "respond 200", "vigil {\n\tfail_mode maybe\n}", `"maybe" is not open or closed`},
		{"global bad events_buffer", "respond 200", "vigil {\n\tevents_buffer 0\n}", `events_buffer: want a positive number of entries, got "0"`},
		{"global bad alerts_buffer", "respond 200", "vigil {\n\talerts_buffer lots\n}", `alerts_buffer: want a positive number of entries, got "lots"`},
		{"global bad db", "respond 200", "vigil {\n\tstore redis {\n\t\taddrs a:1\n\t\tdb -1\n\t}\n}", "not a database number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ""
			if c.global != "" {
				in = "{\n" + c.global + "\n}\n"
			}
			in += ":8080 {\n" + c.site + "\n}\n"
			wantAdaptError(t, in, c.want)
		})
	}
}

// wantAdaptError adapts a Caddyfile that must be refused, with a message
// that contains want and names the file and line.
func wantAdaptError(t *testing.T, in, want string) {
	t.Helper()
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), map[string]any{"filename": "Caddyfile"})
	if err == nil {
		t.Fatalf("no error for:\n%s", in)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Caddyfile:") {
		t.Fatalf("error %q should contain %q and a file:line", err, want)
	}
}

// FuzzHandlerCaddyfile feeds arbitrary text to the handler's and the app's
// Caddyfile parsers: they must answer with an error or a config, never panic,
// and whatever they accept must pass Validate or fail it cleanly.
func FuzzHandlerCaddyfile(f *testing.F) {
	for _, s := range []string{
		"vigil {\n login POST /login {\n user form:username\n success redirect_not /login\n }\n lockout 5 within 15m for 15m max 24h\n}",
		"vigil {\n block_ip 30 within 10m for 10m\n stuffing 10 within 10m\n monitor_only\n max_body 1MB\n}",
		"vigil {\n store redis {\n addrs a:1 b:2\n cluster\n prefix p:\n }\n allow 10.0.0.0/8\n fail_mode closed\n}",
		"vigil {\n events_buffer 100\n alerts_buffer 10\n}",
		"vigil { login GET /x { success header X-A b } }",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		h := new(Handler)
		if h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)) == nil {
			_ = h.Validate()
		}
		a := new(App)
		if a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)) == nil {
			_ = a.validateFailMode()
		}
	})
}
