package audit

import (
	"testing"
	"time"
)

// BenchmarkAppend is what a publisher pays: one queue send, never a write.
// "queued" measures Appends the queue takes (the writer drains between
// batches, off the clock); "full" many goroutines against a full queue,
// the drop path an attack that outruns the disk exercises.
func BenchmarkAppend(b *testing.B) {
	priv, _ := testKey(b)
	o := testOptions(b.TempDir(), priv)
	o.Queue, o.Now = 4096, time.Now
	e := testEvent(1)
	b.Run("queued", func(b *testing.B) {
		l := mustOpen(b, o)
		b.ReportAllocs()
		for done := 0; done < b.N; {
			n := min(b.N-done, o.Queue)
			for range n {
				l.Append(e)
			}
			done += n
			b.StopTimer()
			for len(l.queue) > 0 {
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
		}
		b.StopTimer()
		mustClose(b, l)
		if l.Dropped() != 0 {
			b.Fatalf("dropped %d", l.Dropped())
		}
	})
	b.Run("full", func(b *testing.B) {
		l := mustOpen(b, o)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Append(e)
			}
		})
		b.StopTimer()
		mustClose(b, l)
		b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
	})
}

// BenchmarkWrite is the writer's cost per record (canonical JSON, the
// record line, SHA-256) with the file writes it batches, the sustained
// rate the audit trail can absorb. It drives the writer directly; the
// writer goroutine's tickers are set so that they never fire meanwhile.
func BenchmarkWrite(b *testing.B) {
	o := testOptions(b.TempDir(), nil)
	o.Now, o.FlushEvery, o.Checkpoint = time.Now, time.Hour, time.Hour
	l := mustOpen(b, o)
	e := testEvent(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.w.writeEvent(e)
		if l.w.buf.Len() > 64<<10 {
			_ = l.w.flush()
		}
	}
	b.StopTimer()
	mustClose(b, l)
}
