package baseline

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/store"
)

// TestDecayIsTheLoop: the closed form of n zero windows equals n EWMA steps.
func TestDecayIsTheLoop(t *testing.T) {
	for _, alpha := range []float64{DefaultAlpha, 0.5, 1} {
		for n := int64(0); n <= 60; n++ {
			m, v := 1234.5, 6789.0
			for range n {
				m, v = ewma(m, v, 0, alpha)
			}
			dm, dv := decay(1234.5, 6789.0, alpha, n)
			if math.Abs(dm-m) > 1e-9*(1+m) || math.Abs(dv-v) > 1e-9*(1+v) {
				t.Fatalf("α %v, n %d: closed form (%v, %v), loop (%v, %v)", alpha, n, dm, dv, m, v)
			}
		}
	}
}

func TestRollCounts(t *testing.T) {
	s := series{name: "x", open: 5, total: 10, reported: noWindow}
	if c := roll(&s, 5, DefaultAlpha); c != -1 || s.total != 10 {
		t.Fatalf("same window closed: %d %+v", c, s)
	}
	if c := roll(&s, 3, DefaultAlpha); c != -1 || s.open != 5 {
		t.Fatalf("an earlier window closed: %d %+v", c, s)
	}
	if c := roll(&s, 8, DefaultAlpha); c != 10 || s.windows != 3 || s.open != 8 || s.total != 0 {
		t.Fatalf("roll over 3: %d %+v", c, s)
	}
	if c := roll(&s, math.MaxInt64, DefaultAlpha); c != 0 || s.windows != math.MaxUint32 || s.mean != 0 {
		t.Fatalf("roll to the end of time: %d %+v", c, s)
	}
	if addTotal(math.MaxInt64-1, 5) != math.MaxInt64 || addWindows(math.MaxUint32-1, 1) != math.MaxUint32 {
		t.Fatal("no saturation")
	}
	if floorDiv(-1, 10) != -1 || floorDiv(-10, 10) != -1 || floorDiv(9, 10) != 0 {
		t.Fatal("floorDiv")
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	r := record{window: int64(time.Hour)}
	for i, name := range []string{"bytes", "rows", "requests", "x"} {
		r.series = append(r.series, series{name: name, open: int64(i) - 3, total: 7, mean: 1.5, vari: 2.25,
			windows: 99, reported: noWindow, lastAnomaly: time.Now().UnixNano()})
	}
	got, err := decodeRecord(r.encode())
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if n := len(r.encode()); n > 300 {
		t.Fatalf("a full record takes %d bytes", n)
	}
	// a fifth measure replaces the one idle longest
	r.add("fifth", 100)
	if len(r.series) != maxMeasures || r.find("bytes") != nil || r.find("fifth") == nil {
		t.Fatalf("fifth measure: %+v", r.series)
	}
	p := peerRecord{window: int64(time.Hour), series: []peerSeries{{name: "rows", mean: 3, vari: 4, samples: 9, members: []uint32{1, 2, 3}}}}
	gotP, err := decodePeers(p.encode())
	if err != nil || !reflect.DeepEqual(gotP, p) {
		t.Fatalf("peer round trip: %+v, %v", gotP, err)
	}
}

// TestDecodeJunk: no byte string makes a decoder panic or accept numbers
// that Add could not have written.
func TestDecodeJunk(t *testing.T) {
	good := (&record{window: 1, series: []series{{name: "a", mean: 1}}}).encode()
	goodP := (&peerRecord{window: 1, series: []peerSeries{{name: "a", members: []uint32{1}}}}).encode()
	for i := range good {
		if _, err := decodeRecord(good[:i]); err == nil {
			t.Fatalf("truncated to %d accepted", i)
		}
	}
	for i := range goodP {
		if _, err := decodePeers(goodP[:i]); err == nil {
			t.Fatalf("peer record truncated to %d accepted", i)
		}
	}
	nan := (&record{window: 1, series: []series{{name: "a", mean: math.NaN()}}}).encode()
	if _, err := decodeRecord(nan); err == nil {
		t.Fatal("NaN mean accepted")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(120))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[0] = recordVersion
		}
		_, _ = decodeRecord(b)
		_, _ = decodePeers(b)
	}
}

func TestNewValidates(t *testing.T) {
	p := store.NewMemoryProfiles(nil)
	bad := []Options{
		{},
		{Profiles: p, Factor: 1},
		{Profiles: p, Factor: math.NaN()},
		{Profiles: p, Factor: math.Inf(1)},
		{Profiles: p, Window: -time.Second},
		{Profiles: p, MinHistory: -1},
		{Profiles: p, ZMin: -1},
		{Profiles: p, Alpha: 1.5},
		{Profiles: p, Floor: -1},
		{Profiles: p, TTL: time.Minute},
	}
	for i, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("options %d accepted: %+v", i, o)
		}
	}
	b, err := New(Options{Profiles: p})
	if err != nil {
		t.Fatal(err)
	}
	o := b.opt
	if o.Window != time.Hour || o.Factor != 10 || o.MinHistory != 24 || o.ZMin != 3 || o.Alpha != 0.08 || o.Floor != 1 || o.TTL != DefaultTTL {
		t.Fatalf("defaults %+v", o)
	}
	if b, _ := New(Options{Profiles: p, Window: 24 * time.Hour, MinHistory: 60}); b.opt.TTL != 120*24*time.Hour {
		t.Fatalf("ttl for long windows: %v", b.opt.TTL)
	}
	if _, err := b.Add(t.Context(), Observation{Group: "g"}); err == nil {
		t.Fatal("an observation without a subject was accepted")
	}
	if _, err := b.Add(t.Context(), Observation{Subject: user("a"), Measure: string(make([]byte, 33))}); err == nil {
		t.Fatal("a long measure name was accepted")
	}
}
