package detect

import "net/http"

// Pipeline is the detectors of one site, in the order they run.
type Pipeline struct {
	Checks    []Check
	Observers []Observer
	Taps      []TapFactory
}

// Check runs the checks in order and returns the first refusal.
func (p *Pipeline) Check(req *Request) *Refusal {
	for _, c := range p.Checks {
		if ref := c.Check(req); ref != nil {
			return ref
		}
	}
	return nil
}

// Tap returns the taps that want to watch req's answer, or nil.
func (p *Pipeline) Tap(req *Request) ResponseTap {
	var taps multiTap
	for _, f := range p.Taps {
		if t := f.Tap(req); t != nil {
			taps = append(taps, t)
		}
	}
	switch len(taps) {
	case 0:
		return nil
	case 1:
		return taps[0]
	}
	return taps
}

// Observe hands the upstream's answer to the observers.
func (p *Pipeline) Observe(req *Request, a Answer) {
	for _, o := range p.Observers {
		o.Observe(req, a)
	}
}

// multiTap fans one answer out to several taps; the first error ends it.
type multiTap []ResponseTap

func (m multiTap) Header(status int, h http.Header) {
	for _, t := range m {
		t.Header(status, h)
	}
}

func (m multiTap) Write(p []byte) error {
	for _, t := range m {
		if err := t.Write(p); err != nil {
			return err
		}
	}
	return nil
}

func (m multiTap) Done(complete bool) {
	for _, t := range m {
		t.Done(complete)
	}
}
