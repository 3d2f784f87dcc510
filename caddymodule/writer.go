package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

type handlerFunc = caddyhttp.Handler

// statusRecorder notes the status of the answer as it streams through;
// the body is never buffered. Flush, Unwrap and ReadFrom come from the
// embedded wrapper, so streaming answers pass untouched. The wrapper is
// embedded by value: one allocation per watched request, not two.
type statusRecorder struct {
	caddyhttp.ResponseWriterWrapper
	status int
}

func newRecorder(w http.ResponseWriter) *statusRecorder {
	return &statusRecorder{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		s.status = code
	}
	s.ResponseWriterWrapper.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriterWrapper.Write(b)
}
