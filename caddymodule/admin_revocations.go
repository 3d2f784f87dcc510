package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/session"
	"github.com/vigilsec/vigil/respond"
)

// revocationRequest is the body of POST /vigil/revocations: exactly one of
// user (every session of the user issued until now) or jti (one token).
type revocationRequest struct {
	User     string `json:"user,omitempty"`
	JTI      string `json:"jti,omitempty"`
	Duration string `json:"duration,omitempty"` // default: the longest token lifetime any site accepts
	Reason   string `json:"reason,omitempty"`
}

// handleRevocations serves POST /vigil/revocations and
// DELETE /vigil/revocations/user/{user} | /vigil/revocations/jti/{jti}.
func (a *adminAPI) handleRevocations(w http.ResponseWriter, r *http.Request) error {
	app, err := a.app()
	if err != nil {
		return err
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/vigil/revocations":
		return a.revoke(w, r, app)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/vigil/revocations/user/"):
		user, err := pathTarget(r, "/vigil/revocations/user/")
		if err != nil {
			return err
		}
		return a.lift(w, r, app, respond.RevokeUser, user)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/vigil/revocations/jti/"):
		jti, err := pathTarget(r, "/vigil/revocations/jti/")
		if err != nil {
			return err
		}
		return a.lift(w, r, app, respond.RevokeJTI, jti)
	}
	return apiErr(http.StatusMethodNotAllowed, "%s %s not allowed", r.Method, r.URL.Path)
}

func (a *adminAPI) revoke(w http.ResponseWriter, r *http.Request, app *App) error {
	var req revocationRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err != nil {
		return apiErr(http.StatusBadRequest, "decoding request body: %v", err)
	}
	if (req.User == "") == (req.JTI == "") {
		return apiErr(http.StatusBadRequest, `give exactly one of "user" or "jti"`)
	}
	if len(req.Reason) > 1024 {
		return apiErr(http.StatusBadRequest, "reason is longer than 1024 bytes")
	}
	kind, target, limit := respond.RevokeUser, req.User, detect.MaxUsernameBytes
	if req.JTI != "" {
		// the limit up to which a token's jti is kept: a longer one could
		// never match
		kind, target, limit = respond.RevokeJTI, req.JTI, session.MaxJTIBytes
	}
	if _, err := detect.CheckUsername(target); err != nil || len(target) > limit {
		return apiErr(http.StatusBadRequest, "%s: not a usable identifier (at most %d bytes of UTF-8)", kind, limit)
	}
	reason := req.Reason
	if reason == "" {
		reason = "manual"
	}
	var ttl time.Duration // default: the longest token lifetime
	if req.Duration != "" {
		if ttl, err = caddy.ParseDuration(req.Duration); err != nil || ttl <= 0 {
			return apiErr(http.StatusBadRequest, "duration %q is not a positive duration", req.Duration)
		}
	}
	d, err := app.core.RevokeByOperator(r.Context(), respond.Revocation{Kind: kind, Target: target, Reason: reason, TTL: ttl}, operator(r))
	if err != nil {
		return apiErr(http.StatusBadGateway, "%v", err)
	}
	return writeJSON(w, http.StatusCreated, d)
}
