package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/internal/dashboard"
)

// handleUser serves GET /vigil/users/{user}: the investigation report of
// one account (internal/dashboard.UserReport).
func (a *adminAPI) handleUser(w http.ResponseWriter, r *http.Request) error {
	app, user, err := a.investigationTarget(r, "/vigil/users/")
	if err != nil {
		return err
	}
	rep, err := dashboard.Investigate{Store: app.store(), Now: time.Now(), Locate: app.locate()}.User(r.Context(), user)
	if err != nil {
		return investigationErr(err)
	}
	return writeJSON(w, http.StatusOK, rep)
}

// handleIP serves GET /vigil/ips/{ip}: the investigation report of one
// address (internal/dashboard.IPReport).
func (a *adminAPI) handleIP(w http.ResponseWriter, r *http.Request) error {
	app, ip, err := a.investigationTarget(r, "/vigil/ips/")
	if err != nil {
		return err
	}
	rep, err := dashboard.Investigate{Store: app.store(), Now: time.Now(), Locate: app.locate()}.IP(r.Context(), ip)
	if err != nil {
		return investigationErr(err)
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (a *adminAPI) investigationTarget(r *http.Request, prefix string) (*App, string, error) {
	if r.Method != http.MethodGet {
		return nil, "", caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	app, err := a.app()
	if err != nil {
		return nil, "", err
	}
	t, err := pathTarget(r, prefix)
	if err != nil {
		return nil, "", err
	}
	return app, t, nil
}

// investigationErr is a 400 for a subject that cannot be one, else a 502
// (the store did not answer).
func investigationErr(err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "not a usable") || strings.Contains(msg, "is not an IP address") {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("%v", err)}
	}
	return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: fmt.Errorf("%v", err)}
}
