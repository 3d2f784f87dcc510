package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

func TestShortDetailsAndCells(t *testing.T) {
	long := detect.Details{"user_agent": strings.Repeat("x", 200)}
	if s := shortDetails(long, 30); len([]rune(s)) != 30 || !strings.HasSuffix(s, "…") {
		t.Fatalf("not cut at 30 runes: %q", s)
	}
	if s := shortDetails(nil, 30); s != "-" {
		t.Fatalf("no details: %q", s)
	}
	if c := cell("", 10); c != "-" {
		t.Fatalf("empty cell: %q", c)
	}
	if c := clean("héllo wörld"); c != "héllo wörld" {
		t.Fatalf("printable text changed: %q", c)
	}
	if c := clean("a\nb\x00c\xff"); c != `a\nb\x00c\ufffd` {
		t.Fatalf("clean: %q", c)
	}
}

func TestDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 1500 * time.Millisecond: "2s", time.Minute: "1m", time.Hour: "1h",
		24 * time.Hour: "24h", time.Hour + 5*time.Second: "1h0m5s", 90 * time.Minute: "1h30m", 50 * time.Hour: "2d2h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
