package main

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// kindStats gathers the answers to one kind of request. Every latency is
// kept (a few MB for a minute at thousands of requests a second) and
// sorted at the end, so the percentiles are exact.
type kindStats struct {
	rate      Rate
	scheduled int // set by Run once the schedule is over

	mu       sync.Mutex
	dropped  int
	ok       int
	errors   int
	status   map[int]int     // answers other than 2xx and 3xx
	latency  []time.Duration // due time to the end of the body, of every answer
	lag      []time.Duration // due time to the start of the request, of every request sent
	firstErr string
}

func newKindStats(r Rate) *kindStats {
	return &kindStats{rate: r, status: map[int]int{}}
}

func (s *kindStats) drop() {
	s.mu.Lock()
	s.dropped++
	s.mu.Unlock()
}

// record counts one request due at due, started at started and answered
// with status (0 if err is not nil) now.
func (s *kindStats) record(due, started time.Time, status int, err error) {
	end := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = append(s.lag, started.Sub(due))
	switch {
	case err != nil:
		// no answer, no latency: a refused connection would lower it
		s.errors++
		if s.firstErr == "" {
			s.firstErr = err.Error()
		}
		return
	case status >= 200 && status < 400:
		s.ok++
	default:
		s.status[status]++
	}
	s.latency = append(s.latency, end.Sub(due))
}

// Report is what one run prints, as JSON.
type Report struct {
	URL         string                 `json:"url"`
	DurationS   float64                `json:"duration_s"` // the schedule
	ElapsedS    float64                `json:"elapsed_s"`  // until the last answer
	Conns       int                    `json:"conns"`
	MaxInFlight int                    `json:"max_in_flight"`
	Kinds       map[string]*KindReport `json:"kinds"`
	Total       *KindReport            `json:"total"`
}

// KindReport is the figures of one kind, or of all kinds together.
type KindReport struct {
	Rate       float64        `json:"rate_per_s"`
	Scheduled  int            `json:"scheduled"`    // requests whose time came
	Sent       int            `json:"sent"`         // scheduled less dropped
	Dropped    int            `json:"dropped"`      // late: max-inflight was reached
	OK         int            `json:"ok"`           // 2xx and 3xx answers
	Errors     int            `json:"errors"`       // no answer (refused, reset, timed out)
	Status     map[string]int `json:"status"`       // other answers, by status code
	Latency    Percentiles    `json:"latency_ms"`   // from the due time, of every answer
	StartLag   Percentiles    `json:"start_lag_ms"` // how late the generator sent
	FirstError string         `json:"first_error,omitempty"`
}

// Percentiles of a set of durations, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(p float64) float64 { // nearest rank
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return float64(d[max(i, 0)]) / float64(time.Millisecond)
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

func report(c Config, stats []*kindStats, elapsed time.Duration) *Report {
	r := &Report{
		URL:         c.URL,
		DurationS:   c.Duration.Seconds(),
		ElapsedS:    elapsed.Seconds(),
		Conns:       c.Conns,
		MaxInFlight: c.MaxInFlight,
		Kinds:       map[string]*KindReport{},
		Total:       &KindReport{Status: map[string]int{}},
	}
	var latency, lag []time.Duration
	for _, s := range stats {
		s.mu.Lock()
		k := &KindReport{
			Rate:       s.rate.PerSec,
			Scheduled:  s.scheduled,
			Sent:       s.scheduled - s.dropped,
			Dropped:    s.dropped,
			OK:         s.ok,
			Errors:     s.errors,
			Status:     map[string]int{},
			Latency:    percentiles(s.latency),
			StartLag:   percentiles(s.lag),
			FirstError: s.firstErr,
		}
		for code, n := range s.status {
			k.Status[strconv.Itoa(code)] = n
			r.Total.Status[strconv.Itoa(code)] += n
		}
		latency = append(latency, s.latency...)
		lag = append(lag, s.lag...)
		s.mu.Unlock()
		r.Kinds[s.rate.Kind] = k
		t := r.Total
		t.Rate += k.Rate
		t.Scheduled += k.Scheduled
		t.Sent += k.Sent
		t.Dropped += k.Dropped
		t.OK += k.OK
		t.Errors += k.Errors
		if t.FirstError == "" {
			t.FirstError = k.FirstError
		}
	}
	r.Total.Latency = percentiles(latency)
	r.Total.StartLag = percentiles(lag)
	return r
}
