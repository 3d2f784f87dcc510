package probes

import (
	"fmt"
	"testing"
)

// TestAgentVerdictsGenerations: the cache turns over in halves of its
// bound, dropping the agents not seen for longest and reporting how many;
// an agent seen again in the previous generation survives the turnover.
func TestAgentVerdictsGenerations(t *testing.T) {
	dropped := 0
	c := AgentVerdicts{OnEvict: func(n int) { dropped += n }}
	half := maxAgentVerdicts / 2
	agent := func(i int) string { return fmt.Sprintf("agent-%06d", i) }
	for i := 0; i < 2*half; i++ { // fills m, turns over once: nothing dropped yet
		c.Check(agent(i))
	}
	if dropped != 0 || len(c.m)+len(c.prev) != 2*half {
		t.Fatalf("two generations full: %d dropped, %d+%d held", dropped, len(c.m), len(c.prev))
	}
	// agent 0, of the previous generation, is seen again: it moves into a
	// new current generation, and the rest of its own generation goes
	if name, ok := c.Check(agent(0)); ok || name != "" {
		t.Fatalf("agent 0: %q %v", name, ok)
	}
	if _, ok := c.m[agent(0)]; !ok || dropped != half-1 || len(c.prev) != half {
		t.Fatalf("after the turnover: agent 0 current %v, %d dropped (want %d), prev %d", ok, dropped, half-1, len(c.prev))
	}
	if name, ok := c.Check("sqlmap/1.7"); !ok || name != "sqlmap" {
		t.Fatalf("sqlmap: %q %v", name, ok)
	}
	if _, ok := c.prev[agent(half)]; !ok || dropped != half-1 {
		t.Fatalf("the newer generation was dropped too (%d dropped)", dropped)
	}
	if len(c.m)+len(c.prev) > maxAgentVerdicts {
		t.Fatalf("%d verdicts held, bound %d", len(c.m)+len(c.prev), maxAgentVerdicts)
	}
}
