package caddymodule

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/internal/dashboard"
)

// handleStats serves GET /vigil/stats?from=&to=&step=: the time series of
// the window (internal/dashboard.Series), computed from the event log. At
// most dashboard.MaxBuckets buckets and dashboard.MaxScan events read.
func (a *adminAPI) handleStats(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	q, err := dashboard.ParseStatsQuery(r.URL.Query(), time.Now())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("%v", err)}
	}
	s, err := dashboard.Stats(r.Context(), app.store().Events, q)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: fmt.Errorf("reading events: %v", err)}
	}
	return writeJSON(w, http.StatusOK, s)
}
