package coordinated

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// BenchmarkFailure records failures with every detector on, during a spray
// (so the claim is added to as well): six to seven store calls per failure,
// each a round trip in Redis. "wide" spreads them over 4096 sources in 256
// /24s and 1024 accounts, which fills the site's distinct-member windows
// to their bound (detect.MaxWindowEntries): the memory store then scans
// a thousand members per Add. "narrow" uses 64 sources and 64 accounts.
func BenchmarkFailure(b *testing.B) {
	for _, size := range []struct {
		name       string
		ips, users int
	}{{"narrow", 64, 64}, {"wide", 4096, 1024}} {
		ips := make([]detect.Facts, size.ips)
		for i := range ips {
			ips[i] = facts(fmt.Sprintf("10.0.%d.%d", i/16, i%16))
		}
		users := make([]string, size.users)
		for i := range users {
			users[i] = fmt.Sprintf("user%d", i)
		}
		run := func(b *testing.B, st stores) {
			d, _ := newDetector(b, st, Options{Spray: testSpray, Distributed: testDist, Network: testNet})
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d.Failure(ctx, ips[i%len(ips)], users[i%len(users)], base.Add(time.Duration(i)*time.Millisecond))
			}
		}
		b.Run(size.name+"/memory", func(b *testing.B) { run(b, newStores(b, false)) })
		b.Run(size.name+"/redis", func(b *testing.B) { run(b, newStores(b, true)) })
	}
}
