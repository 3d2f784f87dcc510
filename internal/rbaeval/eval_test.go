package rbaeval

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/detect/risk"
)

// TestAcceptance replays the stream of docs/risk.md (seed 1) through the
// model with its default options and thresholds and checks the goals of
// the evaluation: at least 99 % of naive and VPN attempts and 90 % of
// targeted ones at or above the challenge score, at most 1 % of
// legitimate logins there.
func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 400,000 logins")
	}
	s := Generate(DefaultConfig())
	scored, err := Replay(context.Background(), s, Variant{Name: "default"})
	if err != nil {
		t.Fatal(err)
	}
	m := Evaluate(scored, risk.DefaultChallenge, risk.DefaultBlock)
	var table bytes.Buffer
	if err := m.Table(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	goals := map[Kind]float64{Naive: 0.99, VPN: 0.99, Targeted: 0.90}
	for k, want := range goals {
		if r := m.Kinds[k]; r.N < 2900 || r.Flagged < want {
			t.Errorf("%s: %d attempts, %.4f at or above %d; want ≥ %.2f", k, r.N, r.Flagged, m.Challenge, want)
		}
	}
	if m.Legit < 200_000 || m.Challenged > 0.01 {
		t.Errorf("%d legitimate logins, %.4f challenged; want ≤ 0.01", m.Legit, m.Challenged)
	}
	if m.Blocked > 0.0001 {
		t.Errorf("%.5f of legitimate logins at or above block %d", m.Blocked, m.Block)
	}
	for _, k := range Kinds {
		if m.Kinds[k].AUC < 0.98 {
			t.Errorf("%s: AUC %.4f", k, m.Kinds[k].AUC)
		}
	}
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Users, cfg.Days, cfg.Warmup, cfg.Attacks = 50, 30, 10, 20
	return cfg
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(smallConfig()), Generate(smallConfig())
	if len(a.Logins) == 0 || len(a.Logins) != len(b.Logins) {
		t.Fatalf("%d and %d logins", len(a.Logins), len(b.Logins))
	}
	for i := range a.Logins {
		if a.Logins[i] != b.Logins[i] {
			t.Fatalf("login %d differs: %+v / %+v", i, a.Logins[i], b.Logins[i])
		}
	}
	kinds := map[Kind]int{}
	for i, l := range a.Logins {
		kinds[l.Kind]++
		if i > 0 && l.Time.Before(a.Logins[i-1].Time) {
			t.Fatalf("login %d out of order", i)
		}
		if l.Kind != Legit && l.Time.Before(a.EvalFrom) {
			t.Fatalf("an attack in the warm-up: %+v", l)
		}
	}
	for _, k := range Kinds {
		if kinds[k] != 20 {
			t.Fatalf("%d %s attempts, want 20", kinds[k], k)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	s := Generate(smallConfig())
	var buf bytes.Buffer
	if err := s.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(s.Logins)+1 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	for i, row := range rows[1:] {
		l := s.Logins[i]
		attack := l.Kind != Legit
		if row[2] != l.User || row[3] != l.IP.String() || row[6] != l.UserAgent ||
			(row[8] == "true") != attack || (row[9] == "true") != (attack && l.Success) {
			t.Fatalf("row %d %v for %+v", i, row, l)
		}
	}
}

func TestEvaluate(t *testing.T) {
	var scored []Scored
	for i := range 1000 {
		scored = append(scored, Scored{Kind: Legit, Score: i % 10, DB: float64(i % 10), Learned: true})
	}
	scored = append(scored, Scored{Kind: Naive, Score: 50, DB: 50, Learned: true},
		Scored{Kind: Naive, Score: 5, DB: 5, Learned: true}, Scored{Kind: VPN, Score: 90, DB: 90, Learned: false})
	m := Evaluate(scored, 9, 80)
	if m.Legit != 1000 || m.Challenged != 0.1 || m.Blocked != 0 {
		t.Fatalf("legitimate: %+v", m)
	}
	n := m.Kinds[Naive]
	if n.N != 2 || n.Flagged != 0.5 || n.AUC != 0.5*(1)+0.5*(0.5+0.05) || n.TPR[1] != 0.5 {
		t.Fatalf("naive: %+v", n)
	}
	if v := m.Kinds[VPN]; v.Flagged != 1 || v.AUC != 0.05 { // scored as the gateway would: 0 while learning
		t.Fatalf("vpn: %+v", v)
	}
}
