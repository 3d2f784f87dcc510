package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// How `caddy vigil` prints: tables for a person at a terminal, the admin
// API's JSON for everything else (a pipe, a script, --json), so scripts
// written against the JSON keep working.
//
// Every string from the API is cleaned before it reaches a terminal (see
// clean): usernames, paths and User-Agents in events come from clients, and
// an escape sequence in one must not drive the operator's terminal.

// Render prints one admin API answer.
type Render func(o Output, raw []byte) error

// Output is where and how a command prints.
type Output struct {
	W     io.Writer
	Table bool // false: the API's JSON, indented
	// JSON is --json: JSON even from the commands that print text for a
	// person through a pipe too (why, audit verify).
	JSON bool
	// Now is what the time left on a decision is counted from: the moment
	// the answer arrived (see stamped), unless a test fixes it.
	Now time.Time
	Loc *time.Location
}

// NewOutput is the output of a command printing to w: a table on a
// terminal unless asJSON (--json).
func NewOutput(w io.Writer, asJSON bool) Output {
	return Output{W: w, Table: !asJSON && isTerminal(w), JSON: asJSON, Loc: time.Local}
}

// stamped is o with Now set to this moment unless it is set already: an
// answer is printed as of its arrival, so a decision of an hour made just
// now has "1h" left, not a second more for the time the call took.
func (o Output) stamped() Output {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// isTerminal reports whether w is a terminal (a variable, for tests).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// renderJSON prints the answer's JSON, indented.
func renderJSON(o Output, raw []byte) error {
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	_, err := o.W.Write(pretty.Bytes())
	return err
}

// asTable prints an answer as a table with write, once read into a T, or
// as the API's JSON when the output is no table; what names the answer in
// the error of one that cannot be read.
func asTable[T any](o Output, raw []byte, what string, write func(T) error) error {
	if !o.Table {
		return renderJSON(o, raw)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return write(v)
}

// RenderAuto prints an answer by its shape: the decisions list, an events
// page, a lift, a decision; anything else as JSON. The shapes are the
// admin API's, so a new subcommand gets its table without a renderer.
func RenderAuto(o Output, raw []byte) error {
	var keys map[string]json.RawMessage
	if !o.Table || json.Unmarshal(raw, &keys) != nil {
		return renderJSON(o, raw)
	}
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := keys[n]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("decisions"):
		return renderDecisionList(o, raw)
	case has("events"):
		return renderEventPage(o, raw)
	case has("lifted", "kind", "target"):
		return renderLifted(o, raw)
	case has("kind", "target", "until"):
		return renderDecision(o, raw)
	}
	return renderJSON(o, raw)
}

// time prints a time in the output's zone, to the second.
func (o Output) time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(o.Loc).Format("2006-01-02 15:04:05")
}
