package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Admin is the admin API of a running Caddy as the CLI reaches it.
// caddymodule implements it: where the endpoint is (--address, or the
// admin address of --config) and how to dial it are Caddy's to say.
type Admin interface {
	// Fetch sends one request, with body as JSON unless it is nil, and
	// returns the answer's status and body whatever the status: the health
	// check's 503 carries a report, and an error answer its message.
	Fetch(method, uri string, body any) (status int, raw []byte, err error)
	// Stream sends one request with body as it is and returns the answer
	// for the caller to read and close, so a large export or import is
	// never held whole; an answer from 400 up is an error carrying the
	// API's message.
	Stream(method, uri string, header http.Header, body io.Reader) (*http.Response, error)
}

// Env is what one run of a subcommand works with: the admin API, where the
// answer is printed, and where notes go (a report written, skipped
// decisions, "audit OK"): standard error, so a pipe gets the answer alone.
type Env struct {
	Admin Admin
	Out   Output
	Notes io.Writer
}

// Call sends one admin API request and prints its answer with render. An
// answer from 400 up is returned as an error carrying the status and the
// API's message.
func (e Env) Call(method, uri string, body any, render Render) error {
	status, raw, err := e.Admin.Fetch(method, uri, body)
	if err != nil {
		return err
	}
	if status >= 400 {
		return answerError(method, uri, status, raw)
	}
	return render(e.Out.stamped(), raw)
}

// get fetches an admin API resource; an answer other than 200 is an error.
func (e Env) get(uri string) ([]byte, error) {
	status, raw, err := e.Admin.Fetch(http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, answerError(http.MethodGet, uri, status, raw)
	}
	return raw, nil
}

// getJSON fetches an admin API resource into v.
func (e Env) getJSON(uri string, v any) error {
	raw, err := e.get(uri)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("reading the answer of %s: %w", strings.SplitN(uri, "?", 2)[0], err)
	}
	return nil
}

// answerError is the error of an admin API answer from 400 up: its status
// and the API's own message.
func answerError(method, uri string, status int, raw []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	path, _, _ := strings.Cut(uri, "?")
	return fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, msg)
}
