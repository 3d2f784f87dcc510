package baseline

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAdd is one answer's Add with a peer group, on each store: most
// Adds land in an open window, and every hundredth closes one (feeding the
// peer aggregate too).
func BenchmarkAdd(b *testing.B) {
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			p, _ := s.open(b)
			bl, err := New(Options{Profiles: p, Factor: 10})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			o := Observation{Subject: user("bench"), Group: testGroup, Peer: "finance", Amount: 1000, Measure: "bytes"}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o.At = t0.Add(time.Duration(i) * DefaultWindow / 100)
				if _, err := bl.Add(ctx, o); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkSilence is the Add that folds a year of silent windows.
func BenchmarkSilence(b *testing.B) {
	p, _ := stores[0].open(b)
	bl, _ := New(Options{Profiles: p})
	ctx := context.Background()
	o := Observation{Subject: user("quiet"), Group: testGroup, Amount: 10}
	b.ReportAllocs()
	o.At = t0
	n := 0
	for b.Loop() {
		o.At = o.At.AddDate(1, 0, 0)
		if o.At.Year() > 2200 { // UnixNano ends in 2262: start a new subject
			n++
			o.At, o.Group = t0, testGroup+strconv.Itoa(n)
		}
		if _, err := bl.Add(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
}
