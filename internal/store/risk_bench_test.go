package store

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/risk"
	"github.com/vigilsec/vigil/internal/redistest"
)

const benchAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

// benchRiskStores are the stores the benchmarks compare; Redis only when
// one answers (redistest skips otherwise).
func benchRiskStores(b *testing.B) map[string]func(b *testing.B) risk.Store {
	return map[string]func(b *testing.B) risk.Store{
		"memory": func(*testing.B) risk.Store { return NewMemoryRisk(0, nil) },
		"redis": func(b *testing.B) risk.Store {
			client, prefix := redistest.Client(b)
			return NewRedisRisk(NewKeyspace(client, prefix))
		},
	}
}

// benchLogin is user i's usual login, n hours after t0.
func benchLogin(users []string, i, n int, t0 time.Time) risk.Observation {
	return risk.Observation{User: users[i%len(users)], IP: netip.AddrFrom4([4]byte{81, 2, byte(i >> 8), byte(i)}),
		Country: "DE", ASN: 3320, UserAgent: benchAgent, Time: t0.Add(time.Duration(n) * time.Hour)}
}

// benchModel is a model over a store holding 200 users of 20 logins.
func benchModel(b *testing.B, s risk.Store) (*risk.Model, []string, time.Time) {
	m, err := risk.New(s, risk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	users := make([]string, 200)
	for i := range users {
		users[i] = detect.AccountKey(fmt.Sprint("user", i))
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for n := range 20 {
		for i := range users {
			if err := m.Learn(ctx, benchLogin(users, i, n*24, t0)); err != nil {
				b.Fatal(err)
			}
		}
	}
	return m, users, t0.Add(20 * 24 * time.Hour)
}

func BenchmarkScore(b *testing.B) {
	for name, mk := range benchRiskStores(b) {
		b.Run(name, func(b *testing.B) {
			m, users, t0 := benchModel(b, mk(b))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := m.Score(ctx, benchLogin(users, i, 0, t0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLearn(b *testing.B) {
	for name, mk := range benchRiskStores(b) {
		b.Run(name, func(b *testing.B) {
			m, users, t0 := benchModel(b, mk(b))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := m.Learn(ctx, benchLogin(users, i, i/len(users), t0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
