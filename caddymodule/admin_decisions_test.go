package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/respond"
)

// serve calls one of the admin API's app-level handlers and returns the
// status it answers (an APIError's, when it fails) and the body.
func serveAdmin(t *testing.T, h func(http.ResponseWriter, *http.Request, *App) error, app *App, method, target string, body io.Reader) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h(w, httptest.NewRequest(method, target, body), app)
	var ae caddy.APIError
	if errors.As(err, &ae) {
		return ae.HTTPStatus, ae.Err.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return w.Code, w.Body.String()
}

func listed(t *testing.T, app *App, query string, within ...respond.Kind) []respond.Decision {
	t.Helper()
	list := func(w http.ResponseWriter, r *http.Request, a *App) error { return serveList(w, r, a, within...) }
	code, body := serveAdmin(t, list, app, "GET", "/vigil/decisions"+query, nil)
	if code != http.StatusOK {
		t.Fatalf("list %s: %d %s", query, code, body)
	}
	var v struct{ Decisions []respond.Decision }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v.Decisions
}

// TestAdminImportListExport: an import is validated whole, listed with the
// kind and target filters, exported in each format, and its bad input
// answered 400 with nothing imported.
func TestAdminImportListExport(t *testing.T) {
	app := testApp(t)
	code, body := serveAdmin(t, serveImport, app, "POST", "/vigil/decisions/import?format=crowdsec-csv",
		strings.NewReader("value,duration,type\n1.2.3.4,1h,ban\n1.2.3.5,1h,captcha\n999.9.9.9,1h,ban\n"))
	if code != http.StatusBadRequest || !strings.Contains(body, "line 4") {
		t.Fatalf("a bad row: %d %s", code, body)
	}
	if ds := listed(t, app, ""); len(ds) != 0 {
		t.Fatalf("a refused import left %+v", ds)
	}
	code, body = serveAdmin(t, serveImport, app, "POST", "/vigil/decisions/import?format=crowdsec-csv",
		strings.NewReader("value,duration,type,scope\n1.2.3.4,1h,ban,ip\n1.2.3.5,1h,captcha,ip\n2001:DB8::/32,2h,ban,range\n"))
	var res struct {
		Imported int            `json:"imported"`
		Skipped  map[string]int `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil || res.Imported != 2 || res.Skipped["type captcha"] != 1 {
		t.Fatalf("import: %d %s", code, body)
	}
	vigil := `[{"kind":"lock","target":"Bob ","until":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}]`
	if code, body := serveAdmin(t, serveImport, app, "POST", "/vigil/decisions/import", strings.NewReader(vigil)); code != http.StatusOK {
		t.Fatalf("vigil import: %d %s", code, body)
	}

	if ds := listed(t, app, "?kind=lock&target=BOB"); len(ds) != 1 || ds[0].Target != "bob" {
		t.Fatalf("lock of BOB: %+v", ds)
	}
	if ds := listed(t, app, "?target=2001:db8:0::/32"); len(ds) != 1 || ds[0].Target != "2001:db8::/32" {
		t.Fatalf("range by target: %+v", ds)
	}
	if ds := listed(t, app, "?kind=block,lock"); len(ds) != 3 {
		t.Fatalf("blocks and locks: %+v", ds)
	}
	if ds := listed(t, app, "", respond.Block); len(ds) != 2 {
		t.Fatalf("GET /vigil/blocks: %+v", ds)
	}
	all := func(w http.ResponseWriter, r *http.Request, a *App) error { return serveList(w, r, a) }
	revocations := func(w http.ResponseWriter, r *http.Request, a *App) error {
		return serveList(w, r, a, respond.RevokeUser, respond.RevokeJTI)
	}
	for _, c := range []struct {
		h      func(http.ResponseWriter, *http.Request, *App) error
		target string
		want   string
	}{
		{all, "/vigil/decisions?kind=bans", "kind"},
		{all, "/vigil/decisions?kind=block&target=alice", "target"},
		{revocations, "/vigil/revocations?kind=block", "not listed under /vigil/revocations"},
		{serveExport, "/vigil/decisions/export?format=xml", "unknown format"},
		{serveImport, "/vigil/decisions/import?format=yaml", "unknown format"},
	} {
		if code, body := serveAdmin(t, c.h, app, "GET", c.target, strings.NewReader("")); code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", c.target, code, body, c.want)
		}
	}

	w := httptest.NewRecorder()
	if err := serveExport(w, httptest.NewRequest("GET", "/vigil/decisions/export?format=crowdsec-csv", nil), app); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("X-Vigil-Skipped") != "1" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(w.Body.String(), "value,duration,type,scope,reason,origin\n") || !strings.Contains(w.Body.String(), "2001:db8::/32,") {
		t.Fatalf("CSV export: %v\n%s", w.Header(), w.Body.String())
	}
	code, body = serveAdmin(t, serveExport, app, "GET", "/vigil/decisions/export", nil)
	if code != http.StatusOK || !strings.Contains(body, `"target":"bob"`) {
		t.Fatalf("vigil export: %d %s", code, body)
	}
}

// TestAdminImportBounded: an import larger than MaxImportBytes is 413.
func TestAdminImportBounded(t *testing.T) {
	app := testApp(t)
	big := io.LimitReader(zeros{}, respond.MaxImportBytes+1)
	if code, body := serveAdmin(t, serveImport, app, "POST", "/vigil/decisions/import?format=crowdsec-csv", big); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s", code, body)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// TestLiftByAnyFormOfTheName: DELETE /vigil/locks/BOB lifts bob's lock and
// answers the canonical name.
func TestLiftByAnyFormOfTheName(t *testing.T) {
	app := testApp(t)
	now := time.Now()
	if err := app.core.Impose(context.Background(), respond.Decision{Kind: respond.Lock, Target: "Bob ", Source: "admin", Created: now, Until: now.Add(time.Hour)}, respond.Operator{}); err != nil {
		t.Fatal(err)
	}
	lift := func(w http.ResponseWriter, r *http.Request, a *App) error {
		return (&adminAPI{}).lift(w, r, a, respond.Lock, "BOB")
	}
	if code, body := serveAdmin(t, lift, app, "DELETE", "/vigil/locks/BOB", nil); code != http.StatusOK || !strings.Contains(body, `"target":"bob"`) {
		t.Fatalf("%d %s", code, body)
	}
}

// TestStoreChangeCarriesDecisions: a new shared state for another store
// takes over the decisions of the one in use, without shortening its own.
func TestStoreChangeCarriesDecisions(t *testing.T) {
	client, prefix := redistest.Client(t)
	mem, err := newSharedState(StoreConfig{Type: "memory"}, respond.RedisStoreOptions{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Destruct()
	ctx, now := context.Background(), time.Now()
	_ = mem.store.Decisions.Put(ctx, respond.Decision{Kind: respond.Block, Target: "203.0.113.0/24", Source: "admin", Created: now, Until: now.Add(time.Hour)})
	_ = mem.store.Decisions.Put(ctx, respond.Decision{Kind: respond.Lock, Target: "alice", Source: "auto", Created: now, Until: now.Add(time.Minute)})
	cfg := StoreConfig{Type: "redis", Addrs: []string{client.Options().Addr}, Prefix: prefix}
	red, err := newSharedState(cfg, respond.RedisStoreOptions{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer red.Destruct()
	ds, err := red.store.Decisions.List(ctx, time.Now())
	if err != nil || len(ds) != 2 {
		t.Fatalf("the Redis store holds %+v, %v", ds, err)
	}
	if n := client.HLen(ctx, prefix+"decisions").Val(); n != 2 {
		t.Fatalf("%d decisions in the Redis hash", n)
	}
	// the same Redis with another events retention is the same data: nothing to copy
	again, err := newSharedState(cfg, respond.RedisStoreOptions{Retention: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Destruct()
	if _, ok := again.store.Cache.Locked("alice", time.Now()); !ok {
		t.Fatal("the second state did not load the lock from Redis")
	}
}
