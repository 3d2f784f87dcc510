package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is one kind of traffic and the requests per second it is sent at.
type Rate struct {
	Kind   string
	PerSec float64
}

// Config is one run of the generator.
type Config struct {
	URL         string        // the gateway, e.g. http://127.0.0.1:18090
	Duration    time.Duration // how long requests are scheduled for
	Rates       []Rate        // the kinds sent at once, each at its own rate
	Token       string        // the bearer token of the jwt kind
	Users       int           // login usernames are user1 .. user<Users>
	Conns       int           // connections to the gateway, at most
	MaxInFlight int           // requests in flight, at most; more are dropped
	Timeout     time.Duration // of one request
	Tick        time.Duration // granularity of the schedule
}

// kinds are the traffic kinds of scripts/load-compare.sh.
var kinds = map[string]func(c *Config) (*http.Request, error){
	"other": func(c *Config) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, c.URL+"/products/42", nil)
	},
	"jwt": func(c *Config) (*http.Request, error) {
		r, err := http.NewRequest(http.MethodGet, c.URL+"/account", nil)
		if err == nil {
			r.Header.Set("Authorization", "Bearer "+c.Token)
		}
		return r, err
	},
	"login": func(c *Config) (*http.Request, error) {
		body := "username=user" + strconv.Itoa(1+rand.IntN(c.Users)) + "&password=wrong"
		r, err := http.NewRequest(http.MethodPost, c.URL+"/login", strings.NewReader(body))
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return r, err
	},
}

// ParseRates reads "other=2000,login=200".
func ParseRates(s string) ([]Rate, error) {
	var rates []Rate
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("rate %q: want kind=requests-per-second", part)
		}
		if kinds[name] == nil {
			return nil, fmt.Errorf("rate %q: unknown kind %q (other, jwt, login)", part, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("rate %q: kind %q given twice", part, name)
		}
		seen[name] = true
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || v <= 0 || v > 1e6 {
			return nil, fmt.Errorf("rate %q: want a rate above 0 and at most 1e6 per second", part)
		}
		rates = append(rates, Rate{Kind: name, PerSec: v})
	}
	return rates, nil
}

func (c *Config) check() error {
	switch {
	case !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://"):
		return fmt.Errorf("url %q: want http:// or https://", c.URL)
	case c.Duration <= 0:
		return errors.New("duration must be above 0")
	case len(c.Rates) == 0:
		return errors.New("no rates")
	case c.Users < 1 || c.Conns < 1 || c.MaxInFlight < 1:
		return errors.New("users, conns and max-inflight must be at least 1")
	case c.Timeout <= 0 || c.Tick <= 0:
		return errors.New("timeout and tick must be above 0")
	}
	for _, r := range c.Rates {
		if kinds[r.Kind] == nil {
			return fmt.Errorf("unknown kind %q", r.Kind)
		}
	}
	c.URL = strings.TrimRight(c.URL, "/")
	return nil
}

// scheduled is how many requests a rate sends in d: one at every multiple
// of its period from the start, before d.
func scheduled(r Rate, d time.Duration) int {
	return int(r.PerSec * d.Seconds())
}

// offset is when request i of rate r is due, from the start.
func offset(r Rate, i int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / r.PerSec)
}

// Run sends the requests of c open-loop: every request has a time it is
// due, fixed in advance by its kind's rate, whether or not earlier
// requests have been answered, and its latency is counted from that time,
// so a stall of the gateway delays, and shows in, every request due
// during it. A ticker wakes the scheduler every c.Tick; it starts a
// goroutine for each request due before the next tick, which waits for
// the due time and sends it. A request that would exceed c.MaxInFlight is
// not sent and is counted as dropped. Run returns once every request sent
// has been answered or has timed out; ctx stops the schedule early.
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // the gateway is measured, not a proxy from the environment
		MaxIdleConns:        c.Conns,
		MaxIdleConnsPerHost: c.Conns,
		MaxConnsPerHost:     c.Conns, // a fixed pool: waiting for a connection counts as latency
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   c.Timeout,
		// a redirect is the answer: it is counted, not followed
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	stats := make([]*kindStats, len(c.Rates))
	total := make([]int, len(c.Rates))
	next := make([]int, len(c.Rates))
	for k, r := range c.Rates {
		stats[k] = newKindStats(r)
		total[k] = scheduled(r, c.Duration)
	}
	slots := make(chan struct{}, c.MaxInFlight)
	var wg sync.WaitGroup
	ticker := time.NewTicker(c.Tick)
	defer ticker.Stop()
	start := time.Now()
schedule:
	for {
		horizon := time.Now().Add(c.Tick)
		left := false
		for k, r := range c.Rates {
			for ; next[k] < total[k]; next[k]++ {
				due := start.Add(offset(r, next[k]))
				if due.After(horizon) {
					break
				}
				select {
				case slots <- struct{}{}:
				default:
					stats[k].drop()
					continue
				}
				wg.Add(1)
				go func(k int, due time.Time) {
					defer func() { <-slots; wg.Done() }()
					send(client, &c, c.Rates[k].Kind, due, stats[k])
				}(k, due)
			}
			left = left || next[k] < total[k]
		}
		if !left {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			break schedule
		}
	}
	for k := range stats {
		stats[k].scheduled = next[k] // less than planned if ctx stopped the run
	}
	wg.Wait()
	return report(c, stats, time.Since(start)), nil
}

// send waits until due, sends one request of kind and records the answer.
func send(client *http.Client, c *Config, kind string, due time.Time, s *kindStats) {
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
	started := time.Now()
	req, err := kinds[kind](c)
	if err != nil {
		s.record(due, started, 0, err)
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		s.record(due, started, 0, err)
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.record(due, started, resp.StatusCode, err)
}
