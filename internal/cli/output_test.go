package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/respond"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func tableOut(b *bytes.Buffer) Output {
	return Output{W: b, Table: true, Now: testNow, Loc: time.UTC}
}

// lines splits a table into its lines, each with runs of spaces folded to
// one, so a test does not depend on column widths.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

// TestJSONUnlessTable: without a table, every renderer prints the API's
// JSON, indented, as the CLI always did (scripts read it).
func TestJSONUnlessTable(t *testing.T) {
	raw := []byte(`{"decisions":[{"kind":"block","target":"203.0.113.7"}]}` + "\n")
	for name, r := range map[string]Render{"list": renderDecisionList, "health": RenderHealth, "events": renderEventPage, "json": renderJSON} {
		var b bytes.Buffer
		if err := r(Output{W: &b}, raw); err != nil {
			t.Fatal(name, err)
		}
		var v any
		if err := json.Unmarshal(b.Bytes(), &v); err != nil || !strings.Contains(b.String(), "\n  \"decisions\": [") {
			t.Fatalf("%s: not indented JSON: %v\n%s", name, err, b.String())
		}
	}
}

// TestNewOutput: a table for a person at a terminal, JSON for a pipe and
// whenever --json is given.
func TestNewOutput(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	var b bytes.Buffer
	isTerminal = func(io.Writer) bool { return false }
	if NewOutput(&b, false).Table {
		t.Fatal("a table for a pipe")
	}
	isTerminal = func(io.Writer) bool { return true }
	if !NewOutput(&b, false).Table {
		t.Fatal("no table on a terminal")
	}
	if o := NewOutput(&b, true); o.Table || !o.JSON {
		t.Fatal("--json printed a table")
	}
}

// TestRenderAuto: an answer is printed by its shape, so subcommands need
// no renderer of their own.
func TestRenderAuto(t *testing.T) {
	d, _ := json.Marshal(respond.Decision{Kind: respond.Block, Target: "203.0.113.7", Source: "admin", Strike: 1, Until: testNow.Add(time.Hour)})
	for raw, want := range map[string]string{
		`{"decisions":[]}`: "No active decisions.",
		`{"events":[]}`:    "No events.",
		`{"lifted":true,"kind":"lock","target":"alice"}`: "Lifted lock alice.",
		string(d):        "block 203.0.113.7 - admin 1 2026-01-02 04:04:05 1h",
		`{"imported":3}`: `"imported": 3`,
		`not json`:       "not json",
	} {
		var b bytes.Buffer
		if err := RenderAuto(tableOut(&b), []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(lines(b.String()), "\n"); !strings.Contains(got, want) {
			t.Errorf("%s: printed %q, want %q", raw, got, want)
		}
	}
}
