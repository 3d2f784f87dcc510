// Command vigil-loadgen sends several kinds of requests at once, each at
// a fixed rate, open-loop: every request is due at a time fixed by its
// rate, is sent then whether or not earlier ones were answered, and its
// latency is counted from that time, so a stall of the server shows in
// every request due during it (no coordinated omission, unlike wrk). It
// prints one JSON object: per kind and in total the requests scheduled,
// sent, dropped (late: more than -max-inflight were in flight), answered
// 2xx/3xx, failed, the other answers by status code, and the latency
// p50/p90/p99/max in milliseconds. scripts/load-compare.sh -k mixed runs
// it against Caddy with and without Vigil.
//
//	vigil-loadgen -url http://127.0.0.1:18090 -duration 10s \
//		-rate other=2000,login=200 [-token JWT] [-users 10000] [-conns 64]
//
// The kinds are those of scripts/load-compare.sh:
//
//	other  GET /products/42
//	jwt    GET /account with Authorization: Bearer <-token>
//	login  POST /login, form username=user<N>&password=wrong, N random in 1..-users
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	c := Config{}
	flag.StringVar(&c.URL, "url", "http://127.0.0.1:18090", "the server")
	flag.DurationVar(&c.Duration, "duration", 10*time.Second, "how long requests are scheduled for")
	rates := flag.String("rate", "other=2000,login=200", "kind=requests per second, comma-separated (kinds: other, jwt, login)")
	flag.StringVar(&c.Token, "token", "", "the bearer token of the jwt kind")
	flag.IntVar(&c.Users, "users", 10000, "login usernames are user1 .. user<users>")
	flag.IntVar(&c.Conns, "conns", 64, "connections to the server, at most (requests beyond wait for one, and the wait counts)")
	flag.IntVar(&c.MaxInFlight, "max-inflight", 1024, "requests in flight, at most; one due beyond is not sent, and counted as dropped")
	flag.DurationVar(&c.Timeout, "timeout", 10*time.Second, "of one request")
	flag.DurationVar(&c.Tick, "tick", time.Millisecond, "granularity of the scheduler")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the generator to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	var err error
	if c.Rates, err = ParseRates(*rates); err != nil {
		return err
	}
	for _, r := range c.Rates {
		if r.Kind == "jwt" && c.Token == "" {
			return fmt.Errorf("the jwt kind needs -token")
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := Run(ctx, c)
	if err != nil {
		return err
	}
	out, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}
