package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/internal/dashboard"
)

// handleEventStream serves GET /vigil/events/stream: Server-Sent Events,
// one per new event, across instances when the store is Redis (the hub
// tails the stream). Last-Event-ID resumes from a cursor. The stream ends
// when the vigil app's config is unloaded; clients reconnect.
func (a *adminAPI) handleEventStream(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	return dashboard.ServeStream(w, r, dashboard.HubFor(app.store().Events), dashboard.StreamOptions{Stop: app.ctx.Done()})
}

// serveEventExport answers GET /vigil/events?format=ndjson|csv: the whole
// query (not one page), newest first, streamed page by page through the
// log's cursor; limit, when given, bounds the events written (at most
// dashboard.MaxExport).
func serveEventExport(w http.ResponseWriter, r *http.Request, app *App, format string) error {
	if format != dashboard.FormatNDJSON && format != dashboard.FormatCSV {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("format %q: want ndjson or csv", format)}
	}
	f, err := parseEventFilter(r.URL.Query())
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("%v", err)}
	}
	maxEvents := f.Limit
	w.Header().Set("Content-Type", dashboard.ContentType(format))
	w.Header().Set("Content-Disposition", `attachment; filename="vigil-events.`+format+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	n, err := dashboard.Export(r.Context(), w, app.store().Events, f, dashboard.ExportOptions{Format: format, Max: maxEvents})
	if err != nil && n == 0 {
		// nothing has gone out yet: still an error answer
		w.Header().Del("Content-Disposition")
		return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: fmt.Errorf("querying events: %v", err)}
	}
	if err != nil {
		// the answer has started: the error can only cut it short, and a
		// trailer says so to clients that read trailers
		w.Header().Set(http.TrailerPrefix+"X-Vigil-Export-Error", err.Error())
	}
	w.Header().Set(http.TrailerPrefix+"X-Vigil-Exported", strconv.Itoa(n))
	return nil
}
