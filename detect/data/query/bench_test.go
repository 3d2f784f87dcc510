package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// The request-path checks must cost nothing on the usual request: no
// allocation, well under a microsecond.

func BenchmarkMatchMiss(b *testing.B) {
	q := newDetector(b, store.NewMemoryDistinct(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := q.Match("/static/js/app.4f3c2a.js"); ok {
			b.Fatal("matched")
		}
	}
}

func BenchmarkMatchHit(b *testing.B) {
	q := newDetector(b, store.NewMemoryDistinct(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := q.Match("/api/users/12345"); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkMatchEscaped(b *testing.B) {
	q := newDetector(b, store.NewMemoryDistinct(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := q.Match("/api/%75sers/0012345;x=y/"); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkQueryUsual(b *testing.B) {
	q := newDetector(b, store.NewMemoryDistinct(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := q.Query("q=caddy+security&sort=-created_at&page=2&per_page=25"); ok {
			b.Fatal("reported")
		}
	}
}

// benchEnumerate is a crawler walking 4,096 ids round and round, below
// its limit so every call counts (a reported subject is not counted).
func benchEnumerate(b *testing.B, d query.Distinct) {
	q, err := query.New(query.Options{
		Enumerations: []query.Enumeration{{Pattern: "/api/users/{id}", Limit: 1 << 30, Within: time.Hour}},
		Distinct:     d,
	})
	if err != nil {
		b.Fatal(err)
	}
	subject := detect.HashID("user", "crawler")
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	ctx, now := context.Background(), time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q.Enumerate(ctx, subject, 0, ids[i%len(ids)], now)
		i++
	}
}

func BenchmarkEnumerateMemory(b *testing.B) { benchEnumerate(b, store.NewMemoryDistinct(nil)) }

func BenchmarkEnumerateRedis(b *testing.B) {
	client, prefix := redistest.Client(b)
	benchEnumerate(b, store.NewRedisDistinct(store.NewKeyspace(client, prefix)))
}
