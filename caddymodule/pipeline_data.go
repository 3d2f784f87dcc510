package caddymodule

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/detect/data"
	"github.com/vigilsec/vigil/detect/data/baseline"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/respond"
)

// defaultBaselineWindow is the baseline's unit of time.
const defaultBaselineWindow = time.Hour

// buildData builds the data-access detector, or nil when the site has no
// export, sensitive or enumeration line.
func (h *Handler) buildData(log *slog.Logger) (*data.Detector, error) {
	if len(h.Export) == 0 && len(h.Sensitive) == 0 && len(h.Enumeration) == 0 {
		return nil, nil
	}
	st := h.app.store()
	o := data.Options{Sums: st.Sums, Profiles: st.Profiles, Actor: h.responder, Pool: h.pool, MonitorOnly: h.MonitorOnly, Logger: log}
	for i := range h.Export {
		g, err := h.Export[i].group(st)
		if err != nil {
			return nil, err
		}
		o.Groups = append(o.Groups, g)
	}
	for _, s := range h.Sensitive {
		routes, err := compileRoutes(s.Paths)
		if err != nil {
			return nil, fmt.Errorf("sensitive: %w", err)
		}
		from, to, _ := s.hours()
		o.Sensitive = append(o.Sensitive, data.Sensitive{Routes: routes, From: from, To: to})
	}
	if len(h.Enumeration) > 0 {
		qo := query.Options{Distinct: st.Distinct}
		for _, e := range h.Enumeration {
			qo.Enumerations = append(qo.Enumerations, query.Enumeration{Pattern: e.Pattern, Limit: e.Limit, Within: time.Duration(e.Within)})
		}
		q, err := query.New(qo)
		if err != nil {
			return nil, fmt.Errorf("enumeration: %w", err)
		}
		o.Enumeration = q
	}
	return data.New(o)
}

// group is the detector's form of an export block.
func (e *ExportConfig) group(st *respond.Store) (data.Group, error) {
	routes, err := compileRoutes(e.Paths)
	if err != nil {
		return data.Group{}, fmt.Errorf("export: %w", err)
	}
	g := data.Group{Routes: routes, RowsHeader: e.RowsHeader, Peers: e.Peers, Over: overOf(e.Over)}
	for _, l := range []struct {
		cfg *VolumeLimit
		dst *data.Limit
	}{{e.Bytes, &g.Bytes}, {e.Rows, &g.Rows}, {e.Requests, &g.Reqs}} {
		if l.cfg != nil {
			*l.dst = data.Limit{Max: l.cfg.Max, Within: time.Duration(l.cfg.Within)}
		}
	}
	if b := e.Baseline; b != nil {
		window := time.Duration(b.Window)
		if window == 0 {
			window = defaultBaselineWindow
		}
		bl, err := baseline.New(baseline.Options{Window: window, Factor: b.Factor, MinHistory: b.MinHistory, Profiles: st.Profiles})
		if err != nil {
			return data.Group{}, fmt.Errorf("export %s: baseline: %w", e.Paths[0], err)
		}
		g.Baseline = bl
	}
	// every export block watches its subjects' query shapes (a jump in
	// distinct parameter sets); page_size adds the page checks
	qo := query.Options{Shapes: &query.Shapes{}, Distinct: st.Distinct, Profiles: st.Profiles}
	if p := e.PageSize; p != nil {
		qo.PageSize = &query.PageSize{Max: p.Max, Params: p.Params}
	}
	q, err := query.New(qo)
	if err != nil {
		return data.Group{}, fmt.Errorf("export %s: %w", e.Paths[0], err)
	}
	g.Query = q
	return g, nil
}

func overOf(s string) data.Over {
	switch s {
	case "throttle":
		return data.OverThrottle
	case "revoke":
		return data.OverRevoke
	case "cut":
		return data.OverCut
	}
	return data.OverAlert
}

// compileRoutes compiles path globs as restrict does ("/x/*" covers /x).
func compileRoutes(paths []string) ([]data.Route, error) {
	out := make([]data.Route, 0, len(paths))
	for _, p := range paths {
		m := caddyhttp.MatchPath{p}
		if base, ok := strings.CutSuffix(p, "/*"); ok && base != "" {
			m = append(m, base)
		}
		pm, err := newPathMatcher(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, data.Route{Pattern: p, Match: pm})
	}
	return out, nil
}

// dataClaims are the session claims the export groups read peers from.
func dataClaims(exports []ExportConfig) []string {
	var out []string
	for _, e := range exports {
		if e.Peers != "" {
			out = append(out, e.Peers)
		}
	}
	return out
}
