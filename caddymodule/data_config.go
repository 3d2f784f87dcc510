package caddymodule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// ExportConfig is one `export <path-glob>... { … }` block: routes whose
// answers are data leaving, counted per user (verified session), else per
// client address, as they stream.
type ExportConfig struct {
	// Paths are the routes (globs, as restrict's).
	Paths []string `json:"paths"`
	// Bytes, Rows and Requests raise BULK_EXPORT (HIGH) when a subject's
	// total inside the window passes the maximum.
	Bytes    *VolumeLimit `json:"bytes,omitempty"`
	Rows     *VolumeLimit `json:"rows,omitempty"`
	Requests *VolumeLimit `json:"requests,omitempty"`
	// RowsHeader reads the row count from this response header (e.g.
	// X-Total-Count). Empty: rows are counted in the body as it passes
	// (CSV records, NDJSON lines, the items of a top-level JSON array;
	// by Content-Type; a CSV's first line is its header).
	RowsHeader string `json:"rows_header,omitempty"`
	// Baseline raises DATA_ACCESS_ANOMALY when a subject's volume in a
	// window is far above their usual one.
	Baseline *BaselineConfig `json:"baseline,omitempty"`
	// Peers compares a user with the users sharing this session claim's
	// value (a department, a role): far above both is `insider: true`.
	Peers string `json:"peers,omitempty"`
	// PageSize reports unusual queries: a page size parameter above the
	// maximum, or deep pagination.
	PageSize *PageSizeConfig `json:"page_size,omitempty"`
	// Over is what passing a limit does besides BULK_EXPORT: "alert"
	// (default), "throttle" (429 with Retry-After for the rest of the
	// window), "revoke" (end the user's sessions), "cut" (end the answer
	// that crosses the bytes or rows cap: the client sees a truncated
	// transfer).
	Over string `json:"over,omitempty"`
}

// VolumeLimit is "<max> within <dur>".
type VolumeLimit struct {
	Max    int64          `json:"max"`
	Within caddy.Duration `json:"within"`
}

// BaselineConfig is "<factor> [min_history <n>] [window <dur>]".
type BaselineConfig struct {
	// Factor: a window above Factor × the usual volume (and 3 standard
	// deviations) is anomalous.
	Factor float64 `json:"factor"`
	// MinHistory windows are learned before any judgement (default 24).
	MinHistory int `json:"min_history,omitempty"`
	// Window is the baseline's unit of time (default 1h). Windows without
	// activity count as zero.
	Window caddy.Duration `json:"window,omitempty"`
}

// PageSizeConfig is "<n> [params <name>...]".
type PageSizeConfig struct {
	Max    int      `json:"max"`
	Params []string `json:"params,omitempty"`
}

// SensitiveConfig is `sensitive <path-glob>... [{ hours <HH-HH> }]`: every
// access is SENSITIVE_DATA_ACCESS (LOW), raised by a first access, an
// access outside the hours (UTC) or the user's usual ones, or an answer
// far above the user's usual size.
type SensitiveConfig struct {
	Paths []string `json:"paths"`
	Hours string   `json:"hours,omitempty"`
}

// EnumerationConfig is `enumeration <pattern> <n> within <dur>`: more than
// n distinct {id} values on the pattern (e.g. /api/users/{id}) from one
// subject inside the window is DATA_ACCESS_ANOMALY with kind enumeration.
type EnumerationConfig struct {
	Pattern string         `json:"pattern"`
	Limit   int            `json:"limit"`
	Within  caddy.Duration `json:"within"`
}

func (e *ExportConfig) validate() error {
	if len(e.Paths) == 0 {
		return errors.New("export: at least one path")
	}
	for _, l := range []struct {
		name string
		v    *VolumeLimit
	}{{"bytes", e.Bytes}, {"rows", e.Rows}, {"requests", e.Requests}} {
		if l.v != nil && (l.v.Max < 1 || l.v.Within <= 0) {
			return fmt.Errorf("export %s: %s wants a positive maximum and window", e.Paths[0], l.name)
		}
	}
	switch e.Over {
	case "", "alert", "throttle", "revoke":
	case "cut":
		if e.Bytes == nil && e.Rows == nil {
			return fmt.Errorf("export %s: over cut needs a bytes or rows limit", e.Paths[0])
		}
	default:
		return fmt.Errorf("export %s: over %q: want alert, throttle, revoke or cut", e.Paths[0], e.Over)
	}
	if b := e.Baseline; b != nil && (b.Factor <= 1 || b.MinHistory < 0 || b.Window < 0) {
		return fmt.Errorf("export %s: baseline wants a factor above 1", e.Paths[0])
	}
	if p := e.PageSize; p != nil && p.Max < 1 {
		return fmt.Errorf("export %s: page_size wants a positive maximum", e.Paths[0])
	}
	return nil
}

// hours parses "HH-HH" (UTC); "" is any hour.
func (s *SensitiveConfig) hours() (from, to int, err error) {
	if s.Hours == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s.Hours, "-")
	from, err1 := strconv.Atoi(a)
	to, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || from < 0 || from > 24 || to < 0 || to > 24 || from == to {
		return 0, 0, fmt.Errorf("sensitive: hours %q: want HH-HH, e.g. 08-18 (UTC)", s.Hours)
	}
	return from % 24, to % 24, nil
}

// validateData checks the data-access options.
func (h *Handler) validateData() error {
	for i := range h.Export {
		if err := h.Export[i].validate(); err != nil {
			return err
		}
		if h.Export[i].Peers != "" && (h.Session == nil || h.Session.JWT == nil) {
			return errors.New("export: peers needs a session jwt block to read the claim")
		}
	}
	for i := range h.Sensitive {
		if len(h.Sensitive[i].Paths) == 0 {
			return errors.New("sensitive: at least one path")
		}
		if _, _, err := h.Sensitive[i].hours(); err != nil {
			return err
		}
	}
	for _, e := range h.Enumeration {
		if e.Limit < 1 || e.Within <= 0 || !strings.Contains(e.Pattern, "{") {
			return fmt.Errorf("enumeration %q: want <pattern with {id}> <n> within <duration>", e.Pattern)
		}
	}
	return nil
}
