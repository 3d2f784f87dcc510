package query_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

func newDetector(t testing.TB, d query.Distinct) *query.Detector {
	t.Helper()
	q, err := query.New(query.Options{
		Enumerations: []query.Enumeration{
			{Pattern: "/api/users/{id}", Limit: 100, Within: time.Hour},
			{Pattern: "/api/*/orders/{order}/", Limit: 10, Within: time.Minute},
		},
		PageSize: &query.PageSize{Max: 100},
		Distinct: d,
	})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestMatchPathTricks: every spelling an app resolves to /api/users/5 is
// the id 5 of the first pattern.
func TestMatchPathTricks(t *testing.T) {
	q := newDetector(t, store.NewMemoryDistinct(nil))
	for _, p := range []string{
		"/api/users/5", "//api/users/5", "/API/Users/5", "/api/users/5/", "/api/users/5;x=y",
		"/api/users/%35", "/api/users/005", "/api;jsessionid=1/users/5", "/api/./users//5",
		"/api/x/../users/5", "/api/%75sers/5", "/api/users/%30%30%35", "/api/users/5?x=1",
		"/api%2Fusers/5", "/a/b/../../api/users/5",
	} {
		e, id, ok := q.Match(p)
		if !ok || e != 0 || id != "5" {
			t.Errorf("Match(%q) = %d, %q, %v; want 0, \"5\"", p, e, id, ok)
		}
	}
	for p, want := range map[string]string{
		"/api/users/0": "0", "/api/users/000": "0", "/api/users/0a1": "0a1", "/api/users/alice": "alice",
		"/api/users/Alice": "Alice", "/api/users/%41lice": "Alice",
	} {
		if _, id, ok := q.Match(p); !ok || id != want {
			t.Errorf("Match(%q) = %q, %v; want %q", p, id, ok, want)
		}
	}
	for _, p := range []string{
		"/api/users", "/api/users/", "/api/users/5/orders", "/api/usersx/5", "/api/users/../admin/5",
		"/users/5", "", "/", "/api/users/;x", "/api/users/%2F", "/api/users/..",
		"/x" + strings.Repeat("/a", 40) + "/api/users/5",
	} {
		if e, id, ok := q.Match(p); ok {
			t.Errorf("Match(%q) = %d, %q; want no match", p, e, id)
		}
	}
	// the glob segment and the second pattern
	for _, p := range []string{"/api/v1/orders/17", "/API/v2beta/Orders/0017/", "/api/%76%31/orders/17"} {
		if e, id, ok := q.Match(p); !ok || e != 1 || id != "17" {
			t.Errorf("Match(%q) = %d, %q, %v; want 1, \"17\"", p, e, id, ok)
		}
	}
	// a path deeper than the splitter holds, cleaned back to depth
	deep := "/api/users/5/" + strings.Repeat("x/", 40) + strings.Repeat("../", 40)
	if _, id, ok := q.Match(deep); !ok || id != "5" {
		t.Errorf("deep path cleaned back: %q, %v", id, ok)
	}
}

// TestNewRefuses: malformed patterns and limits are configuration errors.
func TestNewRefuses(t *testing.T) {
	d := store.NewMemoryDistinct(nil)
	for _, e := range []query.Enumeration{
		{Pattern: "api/users/{id}", Limit: 1, Within: time.Minute},
		{Pattern: "/api/users", Limit: 1, Within: time.Minute},
		{Pattern: "/api/{a}/{b}", Limit: 1, Within: time.Minute},
		{Pattern: "/api/x{id}", Limit: 1, Within: time.Minute},
		{Pattern: "/api/{}", Limit: 1, Within: time.Minute},
		{Pattern: "/api/{id}", Limit: 0, Within: time.Minute},
		{Pattern: "/api/{id}", Limit: 1},
		{Pattern: "/api/../{id}", Limit: 1, Within: time.Minute},
	} {
		if _, err := query.New(query.Options{Enumerations: []query.Enumeration{e}, Distinct: d}); err == nil {
			t.Errorf("New accepted %+v", e)
		}
	}
	if _, err := query.New(query.Options{Enumerations: []query.Enumeration{{Pattern: "/a/{id}", Limit: 1, Within: time.Minute}}}); err == nil {
		t.Error("New accepted enumerations without a store")
	}
	for _, ps := range []query.PageSize{{Max: 0}, {Max: 10, MaxPage: -1}, {Max: 10, Params: []string{"__"}}} {
		if _, err := query.New(query.Options{PageSize: &ps}); err == nil {
			t.Errorf("New accepted page size %+v", ps)
		}
	}
	if _, err := query.New(query.Options{Shapes: &query.Shapes{}}); err == nil {
		t.Error("New accepted shapes without a store")
	}
}

// TestQuery reads queries the way lenient frameworks do.
func TestQuery(t *testing.T) {
	q := newDetector(t, store.NewMemoryDistinct(nil))
	cases := []struct {
		query, kind, param string
		value              int64
	}{
		{"limit=10000", "page_size", "limit", 10000},
		{"per_page=500", "page_size", "per_page", 500},
		{"limit=10&limit=100000", "page_size", "limit", 100000},
		{"limit=100000&limit=10", "page_size", "limit", 100000},
		{"page[size]=9999", "page_size", "size", 9999},
		{"page%5Bsize%5D=9999", "page_size", "size", 9999},
		{"$top=5000", "page_size", "top", 5000},
		{"%24top=5000", "page_size", "top", 5000},
		{"perPage=101", "page_size", "per_page", 101},
		{"PER-PAGE=200", "page_size", "per_page", 200},
		{"pageSize=1e6", "page_size", "page_size", 1000000},
		{"limit[]=500", "page_size", "limit", 500},
		{"LIMIT=%2B500", "page_size", "limit", 500},
		{"limit=+500", "page_size", "limit", 500},
		{"limit=500abc", "page_size", "limit", 500},
		{"limit=500.9", "page_size", "limit", 500},
		{"l%69mit=500", "page_size", "limit", 500},
		{"a=1;limit=500", "page_size", "limit", 500},
		{"limit=-1", "page_size", "limit", -1},
		{"limit=10&limit=-1&limit=99999", "page_size", "limit", -1},
		{"limit=99999999999999999999999", "page_size", "limit", 1 << 62},
		{"offset=1000000", "deep_pagination", "offset", 1000000},
		{"page=5000", "deep_pagination", "page", 5000},
		{"page[number]=5000", "deep_pagination", "page", 5000},
		{"page[offset]=200000", "deep_pagination", "offset", 200000},
		{"$skip=200000", "deep_pagination", "skip", 200000},
		{"offset=1000000&limit=50", "deep_pagination", "offset", 1000000},
		{"offset=1000000&limit=5000", "page_size", "limit", 5000},
	}
	for _, c := range cases {
		f, ok := q.Query(c.query)
		if !ok || f.Kind != c.kind || f.Details["param"] != c.param || f.Details["value"] != c.value {
			t.Errorf("Query(%q) = %v %+v; want %s %s=%d", c.query, ok, f, c.kind, c.param, c.value)
		}
	}
	for _, s := range []string{
		"", "limit=100", "limit=10&per_page=100", "page=1000", "offset=100000", "q=limit%3D100000",
		"sort=limit&count=true", "limit=", "limit=abc", "limits=100000", "limit=0", "page=-5",
		"x=" + strings.Repeat("9", 100), strings.Repeat("l", 100) + "=100000", "limit=1e-3",
	} {
		if f, ok := q.Query(s); ok {
			t.Errorf("Query(%q) = %+v; want nothing", s, f)
		}
	}
	// configured names replace the defaults
	q2, err := query.New(query.Options{PageSize: &query.PageSize{Max: 50, Params: []string{"rows"}, MaxPage: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q2.Query("limit=100000"); ok {
		t.Error("limit counted though only rows is configured")
	}
	if f, ok := q2.Query("ROWS=51"); !ok || f.Details["param"] != "rows" || f.Details["max"] != int64(50) {
		t.Errorf("rows=51: %+v", f)
	}
	if f, ok := q2.Query("offset=501"); !ok || f.Details["max"] != int64(500) {
		t.Errorf("offset beyond 10 pages of 50: %+v", f)
	}
}

// enumerate feeds the paths of ids from..to through Match and Enumerate
// and returns the findings.
func enumerate(t testing.TB, q *query.Detector, subject string, paths []string, now time.Time) []query.Finding {
	var out []query.Finding
	for i, p := range paths {
		e, id, ok := q.Match(p)
		if !ok {
			t.Fatalf("no match: %s", p)
		}
		if f, ok := q.Enumerate(context.Background(), subject, e, id, now.Add(time.Duration(i)*time.Millisecond)); ok {
			out = append(out, f)
		}
	}
	return out
}

func userPaths(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("/api/users/%d", i))
	}
	return out
}

// TestEnumerate runs on memory and on Redis: 5,000 ids cross a limit of
// 100 once per window; 30 ids, or one id spelled every way, do not.
func TestEnumerate(t *testing.T) {
	client, prefix := redistest.Client(t)
	for name, d := range map[string]query.Distinct{
		"memory": store.NewMemoryDistinct(nil),
		"redis":  store.NewRedisDistinct(store.NewKeyspace(client, prefix)),
	} {
		q := newDetector(t, d)
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		crawler, reader := detect.HashID("user", "crawler"), detect.HashID("user", "reader")
		found := enumerate(t, q, crawler, userPaths(1, 5000), now)
		if len(found) != 1 {
			t.Fatalf("%s: %d findings for 5000 ids, want 1", name, len(found))
		}
		f := found[0]
		if f.Kind != "enumeration" || f.Details["limit"] != 100 || f.Details["pattern"] != "/api/users/{id}" ||
			f.Details["window"] != "1h0m0s" || f.Details["distinct_ids"].(int64) < 100 || f.Details["distinct_ids"].(int64) > 103 {
			t.Fatalf("%s: finding %+v", name, f)
		}
		if found := enumerate(t, q, reader, userPaths(1, 30), now); len(found) != 0 {
			t.Fatalf("%s: 30 ids reported: %+v", name, found)
		}
		// one id, every spelling: one distinct id for the pattern
		tricks := []string{"/api/users/5", "//api/users/5", "/API/Users/5", "/api/users/5/", "/api/users/5;x=y", "/api/users/%35", "/api/users/005"}
		q2, _ := query.New(query.Options{Enumerations: []query.Enumeration{{Pattern: "/api/users/{id}", Limit: 2, Within: time.Hour}}, Distinct: d})
		tricky := detect.HashID("user", "tricky")
		if found := enumerate(t, q2, tricky, tricks, now); len(found) != 0 {
			t.Fatalf("%s: one id in disguises counted as several: %+v", name, found)
		}
		if found := enumerate(t, q2, tricky, []string{"/api/users/6"}, now); len(found) != 1 || found[0].Details["distinct_ids"] != int64(2) {
			t.Fatalf("%s: the second id: %+v", name, found)
		}
		// the crawler goes on in the next window: reported again, once
		later := now.Add(2 * time.Hour)
		if found := enumerate(t, q, crawler, userPaths(5001, 5300), later); len(found) != 1 {
			t.Fatalf("%s: next window: %d findings", name, len(found))
		}
		// Forget starts over
		if err := q.Forget(context.Background(), crawler); err != nil {
			t.Fatal(err)
		}
		if found := enumerate(t, q, crawler, userPaths(6000, 6050), later); len(found) != 0 {
			t.Fatalf("%s: after Forget: %+v", name, found)
		}
	}
}
