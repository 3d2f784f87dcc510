package detect

import "sync"

// Pool runs detectors' slow work (a store round trip for a 4xx count, an
// upstream refusal) off the request path, with a bound: when Redis is slow
// the work is dropped and counted rather than piling up goroutines or
// holding requests.
type Pool struct {
	slots   chan struct{}
	wg      sync.WaitGroup
	dropped func()
}

// NewPool runs at most size jobs at once; dropped (may be nil) is called
// for each job refused because all slots were busy.
func NewPool(size int, dropped func()) *Pool {
	return &Pool{slots: make(chan struct{}, size), dropped: dropped}
}

// Go runs fn in the background, or drops it when the pool is full.
func (p *Pool) Go(fn func()) {
	select {
	case p.slots <- struct{}{}:
		p.wg.Add(1)
		go func() {
			defer func() {
				<-p.slots
				p.wg.Done()
			}()
			fn()
		}()
	default:
		if p.dropped != nil {
			p.dropped()
		}
	}
}

// Wait waits for the jobs in flight (shutdown, tests).
func (p *Pool) Wait() { p.wg.Wait() }
