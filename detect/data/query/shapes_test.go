package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/internal/store"
)

// TestShape: a shape is the set of names, whatever their order, case,
// spelling or repetition.
func TestShape(t *testing.T) {
	same := []string{"a=1&per_page=2", "perPage=3&a=4", "A=1&per-page=2&a=9", "a&per_page", "a=1;PER_PAGE=2"}
	for _, q := range same[1:] {
		if query.Shape(q) != query.Shape(same[0]) {
			t.Errorf("Shape(%q) differs from Shape(%q)", q, same[0])
		}
	}
	for _, q := range []string{"a=1", "a=1&b=2", "per_page=1", "a=1&per_page=2&b=3", ""} {
		if query.Shape(q) == query.Shape(same[0]) {
			t.Errorf("Shape(%q) equals Shape(%q)", q, same[0])
		}
	}
	if query.Shape("") != 0 {
		t.Error("the empty query has a shape")
	}
}

// TestShapes: a subject that used three shapes a window for five windows
// and then tries a hundred is reported, once; one without a history is
// not.
func TestShapes(t *testing.T) {
	q, err := query.New(query.Options{
		Shapes:   &query.Shapes{Within: time.Minute},
		Distinct: store.NewMemoryDistinct(nil),
		Profiles: store.NewMemoryProfiles(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	user, fresh := detect.HashID("user", "u"), detect.HashID("user", "new")
	usual := []string{"q=x", "q=x&page=2", "id=1"}
	for w := 0; w < 5; w++ {
		for i := 0; i < 30; i++ {
			now := base.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Second)
			if f, ok := q.Shapes(ctx, user, query.Shape(usual[i%3]), now); ok {
				t.Fatalf("window %d: usual shapes reported: %+v", w, f)
			}
		}
	}
	fuzz := func(subject string, at time.Time) int {
		found := 0
		for i := 0; i < 100; i++ {
			if _, ok := q.Shapes(ctx, subject, query.Shape(fmt.Sprintf("q=x&p%d=1", i)), at.Add(time.Duration(i)*100*time.Millisecond)); ok {
				found++
			}
		}
		return found
	}
	if n := fuzz(user, base.Add(5*time.Minute)); n != 1 {
		t.Fatalf("a jump to 100 shapes: %d findings, want 1", n)
	}
	if n := fuzz(fresh, base.Add(5*time.Minute)); n != 0 {
		t.Fatalf("no history: %d findings", n)
	}
}

func BenchmarkShape(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		query.Shape("q=caddy+security&sort=-created_at&page=2&per_page=25")
	}
}
