// Command vigil-rbaeval evaluates the login risk model (detect/risk) on a
// generated, labelled stream of logins (internal/rbaeval) and prints the
// table of docs/risk.md: per attacker kind the ROC AUC, the true-positive
// rate at fixed false-positive rates, and the shares at or above the
// challenge and block scores, with the share of legitimate logins
// challenged.
//
//	go run ./cmd/vigil-rbaeval [-users N] [-seed S] [-csv out.csv]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vigilsec/vigil/detect/risk"
	"github.com/vigilsec/vigil/internal/rbaeval"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-rbaeval:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := rbaeval.DefaultConfig()
	flag.IntVar(&cfg.Users, "users", cfg.Users, "legitimate users")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the stream")
	flag.IntVar(&cfg.Days, "days", cfg.Days, "days of logins")
	flag.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "days learned before the evaluation window")
	flag.IntVar(&cfg.Attacks, "attacks", cfg.Attacks, "attempts of each attacker kind")
	csvPath := flag.String("csv", "", "write the stream to this file as CSV (RBA-dataset columns)")
	challenge := flag.Int("challenge", risk.DefaultChallenge, "challenge score")
	block := flag.Int("block", risk.DefaultBlock, "block score")
	flag.Parse()
	if cfg.Users < 1 || cfg.Days < 1 || cfg.Warmup < 0 || cfg.Warmup >= cfg.Days || cfg.Attacks < 0 {
		return errors.New("need -users ≥ 1, -days ≥ 1, 0 ≤ -warmup < -days and -attacks ≥ 0")
	}

	t0 := time.Now()
	s := rbaeval.Generate(cfg)
	fmt.Printf("stream: seed %d, %d users, %d days (%d learned first), %d logins, generated in %v\n",
		cfg.Seed, cfg.Users, cfg.Days, cfg.Warmup, len(s.Logins), time.Since(t0).Round(time.Millisecond))
	if *csvPath != "" {
		if err := writeCSV(*csvPath, s); err != nil {
			return err
		}
		fmt.Printf("wrote %s\n", *csvPath)
	}
	t0 = time.Now()
	scored, err := rbaeval.Replay(context.Background(), s, rbaeval.Variant{Name: "default"})
	if err != nil {
		return err
	}
	fmt.Printf("replayed in %v (memory store, default options)\n\n", time.Since(t0).Round(time.Millisecond))
	m := rbaeval.Evaluate(scored, *challenge, *block)
	if err := m.Table(os.Stdout); err != nil {
		return err
	}
	fmt.Printf("\nlegitimate logins scored while their profile was learning: %.2f %%\n", 100*m.Learning)
	return nil
}

func writeCSV(path string, s rbaeval.Stream) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	err = s.WriteCSV(w)
	if err == nil {
		err = w.Flush()
	}
	return errors.Join(err, f.Close())
}
