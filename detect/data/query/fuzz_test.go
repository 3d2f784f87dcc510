package query

import (
	"strings"
	"testing"
	"time"
)

// fuzzDetector has two patterns (one with a glob) and the default page
// parameters; Match and Query need no store.
func fuzzDetector(t testing.TB) *Detector {
	d, err := New(Options{
		Enumerations: []Enumeration{
			{Pattern: "/api/users/{id}", Limit: 10, Within: time.Minute},
			{Pattern: "/api/v*/orders/{id}/items", Limit: 10, Within: time.Minute},
		},
		PageSize: &PageSize{Max: 100},
		Distinct: nopDistinct{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// FuzzMatch: Match never panics, ignores a trailing slash, and any id it
// returns is a whole segment, non-empty, without leading zeros when
// numeric.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/api/users/5", "//API/users/%35;x=y/", "/api/v2/orders/007/items", "/api/users/../users/1", "/%", "/api/users/%zz"} {
		f.Add(s)
	}
	d := fuzzDetector(f)
	f.Fuzz(func(t *testing.T, path string) {
		e, id, ok := d.Match(path)
		if !ok {
			return
		}
		if id == "" || strings.Contains(id, "/") || e < 0 || e > 1 {
			t.Fatalf("Match(%q) = %d, %q", path, e, id)
		}
		if len(id) > 1 && id[0] == '0' && numericZeros(id) == 0 && strings.Trim(id, "0123456789") == "" {
			t.Fatalf("Match(%q): numeric id %q keeps its zeros", path, id)
		}
		if strings.Contains(path, "?") {
			return
		}
		if e2, id2, ok2 := d.Match(path + "/"); !ok2 || e2 != e || id2 != id {
			t.Fatalf("Match(%q/) = %d, %q, %v; without the slash %d, %q", path, e2, id2, ok2, e, id)
		}
	})
}

// FuzzQuery: Query never panics, reports only what it knows, and a query
// repeated is judged as the query itself (a repeat counts at its largest).
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"limit=10000", "limit=10&limit=100000", "page[size]=9999", "offset=1000000", "$top=1e9", "a=%zz&limit=%", "per_page=-1"} {
		f.Add(s)
	}
	d := fuzzDetector(f)
	f.Fuzz(func(t *testing.T, q string) {
		got, ok := d.Query(q)
		if !ok {
			return
		}
		if got.Kind != "page_size" && got.Kind != "deep_pagination" || got.Details["kind"] != got.Kind {
			t.Fatalf("Query(%q) = %+v", q, got)
		}
		again, ok2 := d.Query(q + "&" + q)
		if !ok2 || again.Kind != got.Kind || again.Details["value"] != got.Details["value"] {
			t.Fatalf("Query(%q twice) = %+v, once %+v", q, again, got)
		}
	})
}
