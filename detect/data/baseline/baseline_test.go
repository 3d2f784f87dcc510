package baseline

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// TestSpikeCaughtInOpenWindow: 100 per window for 30 windows, then 2,000
// (20× the baseline) arriving in pieces is reported on the piece that
// crosses, while the window is still open, and only once.
func TestSpikeCaughtInOpenWindow(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{})
		alice := user("alice")
		history(t, b, alice, "", 100, 0, 30)
		v := add(t, b, Observation{Subject: alice, Amount: 500, At: at(30, time.Minute)})
		if v.Anomalous || v.Windows != 30 || v.Mean != 100 || v.Score != 25 {
			t.Fatalf("500 of 1,000: %+v", v)
		}
		v = add(t, b, Observation{Subject: alice, Amount: 1500, At: at(30, 2*time.Minute)})
		if !v.Anomalous || v.Observed != 2000 || v.Insider {
			t.Fatalf("2,000 against 100: %+v", v)
		}
		// 2× the threshold: 50 + 35·log10(2)
		if v.Score != 60.5 {
			t.Fatalf("score %v, want 60.5", v.Score)
		}
		d := v.Details()
		want := detect.Details{"anomaly_score": 60.5, "baseline": 100.0, "observed": 2000.0, "windows": 30,
			"factor": 10.0, "insider": false, "stddev": 0.0, "measure": DefaultMeasure, "window": "1h0m0s",
			"window_start": at(30, 0).Format(time.RFC3339), "z": 1900.0}
		for k, w := range want {
			if d[k] != w {
				t.Errorf("details[%q] = %#v, want %#v", k, d[k], w)
			}
		}
		if _, ok := d["peer_mean"]; ok {
			t.Error("peer figures without peers")
		}
		// the same window again: still high, not reported twice
		v = add(t, b, Observation{Subject: alice, Amount: 5000, At: at(30, 50*time.Minute)})
		if v.Anomalous || v.Score < 50 {
			t.Fatalf("second crossing in one window: %+v", v)
		}
		snap, err := b.Profile(context.Background(), alice, testGroup)
		if err != nil || len(snap.Measures) != 1 {
			t.Fatalf("profile %+v, %v", snap, err)
		}
		m := snap.Measures[0]
		if m.Current != 7000 || m.Windows != 30 || !m.LastAnomaly.Equal(at(30, 2*time.Minute)) || !m.WindowStart.Equal(at(30, 0)) {
			t.Fatalf("profile %+v", m)
		}
	})
}

// TestNothingBeforeMinHistory: however large, a window is not judged
// before MinHistory closed windows.
func TestNothingBeforeMinHistory(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{MinHistory: 24})
		bob := user("bob")
		history(t, b, bob, "", 100, 0, 23)
		v := add(t, b, Observation{Subject: bob, Amount: 1_000_000, At: at(23, 0)})
		if v.Anomalous || v.Score != 0 || v.Windows != 23 || v.Z != 0 {
			t.Fatalf("judged at 23 windows: %+v", v)
		}
		// the next window has 24 behind it (the 1,000,000 one included)
		v = add(t, b, Observation{Subject: bob, Amount: 1_000_000_000, At: at(24, 0)})
		if !v.Anomalous || v.Windows != 24 {
			t.Fatalf("not judged at 24 windows: %+v", v)
		}
	})
}

// TestSilentWindowsCount: a user seen once without exporting has a history
// of zeros by the time they export, and 10,000 is then anomalous; the same
// export after too few silent windows is not judged.
func TestSilentWindowsCount(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{Floor: 100})
		carol, dave := user("carol"), user("dave")
		add(t, b, Observation{Subject: carol, Amount: 0, At: at(0, 0)})
		add(t, b, Observation{Subject: dave, Amount: 0, At: at(0, 0)})
		v := add(t, b, Observation{Subject: carol, Amount: 10_000, At: at(30, 0)})
		if !v.Anomalous || v.Windows != 30 || v.Mean != 0 || v.Score != 85 {
			t.Fatalf("after 30 silent windows: %+v", v)
		}
		v = add(t, b, Observation{Subject: dave, Amount: 10_000, At: at(10, 0)})
		if v.Anomalous || v.Windows != 10 {
			t.Fatalf("after 10 silent windows: %+v", v)
		}
	})
}

// team gives each of members its amount per window in [0, windows), the
// members taking turns within each window.
func team(t *testing.T, b *Baselines, peer string, members []string, amounts []int64, windows int) {
	t.Helper()
	for w := range windows {
		for i, m := range members {
			if v := add(t, b, Observation{Subject: m, Peer: peer, Amount: amounts[i], At: at(w, time.Minute)}); v.Anomalous {
				t.Fatalf("%s window %d: %+v", peer, w, v)
			}
		}
	}
}

// TestPeers: a team exporting 10,000 per window each is the norm for a new
// member and for a member whose own history is low; a member at 200,000 is
// above both their own baseline and their peers': an insider.
func TestPeers(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{Floor: 100})
		// five members at 10,000 and one whose own volume is low
		var finance []string
		amounts := []int64{10_000, 10_000, 10_000, 10_000, 10_000, 100}
		for i := range amounts {
			finance = append(finance, user("fin"+string(rune('a'+i))))
		}
		low := finance[5]
		team(t, b, "finance", finance, amounts, 30)
		// a newcomer doing what the team does
		v := add(t, b, Observation{Subject: user("newcomer"), Peer: "finance", Amount: 10_000, At: at(30, time.Minute)})
		if v.Anomalous || v.Windows != 0 {
			t.Fatalf("newcomer at the team's level: %+v", v)
		}
		// a member with a low history of their own moving up to the team's
		// level: above their own baseline, but not their peers'
		v = add(t, b, Observation{Subject: low, Peer: "finance", Amount: 10_000, At: at(30, 2*time.Minute)})
		t.Logf("at the team's level: %+v", v)
		if v.Anomalous || v.Z < 3 || v.Peers != 6 || v.PeerMean < 5_000 || v.Score != 49 {
			t.Fatalf("low member at the team's level: %+v", v)
		}
		// the same jump without peers is anomalous
		solo := user("solo")
		history(t, b, solo, "", 100, 0, 30)
		if v = add(t, b, Observation{Subject: solo, Amount: 10_000, At: at(30, 0)}); !v.Anomalous || v.Insider {
			t.Fatalf("solo jump: %+v", v)
		}
		// a member at 20× the team
		v = add(t, b, Observation{Subject: finance[0], Peer: "finance", Amount: 200_000, At: at(30, 3*time.Minute)})
		// own: 2× the threshold (60.5); peers add 5 and more
		if !v.Anomalous || !v.Insider || v.Score < 65.5 || v.Score > 100 {
			t.Fatalf("insider: %+v", v)
		}
		t.Logf("insider: %+v", v)
		d := v.Details()
		if d["insider"] != true || d["peers"] != 6 || d["peer_mean"].(float64) < 5_000 {
			t.Fatalf("insider details %v", d)
		}
		// another team's members are not finance's peers
		v = add(t, b, Observation{Subject: user("other"), Peer: "sales", Amount: 10, At: at(30, 0)})
		if v.Peers != 0 || v.PeerMean != 0 {
			t.Fatalf("peers leaked across values: %+v", v)
		}
	})
}

// TestPeersNeedMembers: one member's history is no peer group.
func TestPeersNeedMembers(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{})
		a, c := user("a"), user("c")
		history(t, b, a, "ops", 100_000, 0, 30)
		history(t, b, c, "ops", 100, 0, 30)
		v := add(t, b, Observation{Subject: c, Peer: "ops", Amount: 50_000, At: at(30, 0)})
		if !v.Anomalous || v.Peers != 0 {
			t.Fatalf("two members excused a jump: %+v", v)
		}
	})
}

// TestConcurrentAdds: goroutines on two instances add to one window and
// the total is exact; of the crossing ones exactly one is reported.
func TestConcurrentAdds(t *testing.T) {
	eachStore(t, func(t *testing.T, p, other detect.Profiles) {
		b1, b2 := newB(t, p, Options{}), newB(t, other, Options{})
		erin := user("erin")
		history(t, b1, erin, "", 100, 0, 30)
		var reported atomic.Int32
		var wg sync.WaitGroup
		const n, each = 20, 5
		for i := range n {
			b := b1
			if i%2 == 1 {
				b = b2
			}
			wg.Go(func() {
				for j := range each {
					v, err := b.Add(context.Background(), Observation{Subject: erin, Group: testGroup, Amount: int64(100 + i), At: at(30, time.Duration(j)*time.Second)})
					if err != nil {
						t.Error(err)
					}
					if v.Anomalous {
						reported.Add(1)
					}
				}
			})
		}
		wg.Wait()
		snap, err := b2.Profile(context.Background(), erin, testGroup)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(each * (n*100 + n*(n-1)/2))
		if got := snap.Measures[0].Current; got != want || snap.Measures[0].Windows != 30 {
			t.Fatalf("total %d over %d windows, want %d over 30", got, snap.Measures[0].Windows, want)
		}
		if reported.Load() != 1 {
			t.Fatalf("%d reports of one window", reported.Load())
		}
	})
}

// TestCorruptRecords: garbage where a record should be is an empty record,
// and the next Add replaces it.
func TestCorruptRecords(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		ctx := context.Background()
		b := newB(t, p, Options{})
		frank := user("frank")
		good := (&record{window: int64(DefaultWindow), series: []series{{name: "volume", windows: 50, mean: 1, reported: noWindow}}}).encode()
		for _, junk := range [][]byte{{}, []byte("not a record"), good[:len(good)-1], append(good, 0), {recordVersion + 1}} {
			for _, k := range []struct {
				kind detect.ProfileKind
				key  string
			}{{SubjectKind, subjectKey(frank, testGroup)}, {PeerKind, peerKey("eng", testGroup)}} {
				if _, err := p.Update(ctx, k.kind, k.key, time.Hour, func([]byte) []byte { return junk }); err != nil {
					t.Fatal(err)
				}
			}
			if snap, err := b.Profile(ctx, frank, testGroup); err != nil || len(snap.Measures) != 0 {
				t.Fatalf("profile of junk %q: %+v, %v", junk, snap, err)
			}
			v := add(t, b, Observation{Subject: frank, Peer: "eng", Amount: 7, At: at(0, 0)})
			if v.Windows != 0 || v.Observed != 7 || v.Anomalous {
				t.Fatalf("after junk %q: %+v", junk, v)
			}
		}
	})
}

// TestLongSilence: a year of hourly windows, and 30 years of millisecond
// ones, fold in one step; the counts are exact or saturate.
func TestLongSilence(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{})
		g := user("gina")
		add(t, b, Observation{Subject: g, Amount: 100, At: at(0, 0)})
		start := time.Now()
		v := add(t, b, Observation{Subject: g, Amount: 5, At: t0.AddDate(1, 0, 0)})
		if v.Windows != 8760 || v.Mean > 1e-100 || math.IsNaN(v.StdDev) || v.Anomalous {
			t.Fatalf("after a year: %+v", v)
		}
		ms := newB(t, p, Options{Window: time.Millisecond, TTL: time.Hour})
		add(t, ms, Observation{Subject: g, Group: "ms", Amount: 100, At: t0})
		v = add(t, ms, Observation{Subject: g, Group: "ms", Amount: 100, At: t0.AddDate(30, 0, 0)})
		if v.Windows != math.MaxUint32 || v.Mean != 0 {
			t.Fatalf("after 30 years of ms windows: %+v", v)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("silence took %v", d)
		}
	})
}

// TestMeasures: bytes and rows keep separate baselines in one record.
func TestMeasures(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		b := newB(t, p, Options{})
		h := user("hal")
		for w := range 30 {
			add(t, b, Observation{Subject: h, Measure: "bytes", Amount: 1 << 20, At: at(w, 0)})
			add(t, b, Observation{Subject: h, Measure: "rows", Amount: 50, At: at(w, 0)})
		}
		// 5,000 rows is 100× the rows baseline, nothing in bytes
		if v := add(t, b, Observation{Subject: h, Measure: "rows", Amount: 5000, At: at(30, 0)}); !v.Anomalous || v.Measure != "rows" {
			t.Fatalf("rows: %+v", v)
		}
		if v := add(t, b, Observation{Subject: h, Measure: "bytes", Amount: 5000, At: at(30, 0)}); v.Anomalous || v.Mean != 1<<20 {
			t.Fatalf("bytes: %+v", v)
		}
		snap, _ := b.Profile(context.Background(), h, testGroup)
		if len(snap.Measures) != 2 || snap.Measures[0].Measure != "bytes" || snap.Measures[1].Current != 5000 {
			t.Fatalf("profile %+v", snap)
		}
	})
}

// TestWindowChangeForgets: a baseline learned per hour is not judged per
// day.
func TestWindowChangeForgets(t *testing.T) {
	eachStore(t, func(t *testing.T, p, _ detect.Profiles) {
		hourly := newB(t, p, Options{})
		i := user("ivy")
		history(t, hourly, i, "", 100, 0, 30)
		daily := newB(t, p, Options{Window: 24 * time.Hour})
		if v := add(t, daily, Observation{Subject: i, Amount: 1e6, At: at(40, 0)}); v.Windows != 0 || v.Anomalous {
			t.Fatalf("hourly history judged daily: %+v", v)
		}
	})
}
