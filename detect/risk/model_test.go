package risk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/risk"
	"github.com/vigilsec/vigil/internal/store"
)

const (
	chromeWin = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	iphone    = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

// monday9 is a Monday, 09:00 UTC.
var monday9 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type world struct {
	t     *testing.T
	model *risk.Model
	ctx   context.Context
}

func newWorld(t *testing.T) *world {
	m, err := risk.New(store.NewMemoryRisk(0, nil), risk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, model: m, ctx: context.Background()}
}

func (w *world) learn(o risk.Observation) {
	w.t.Helper()
	if err := w.model.Learn(w.ctx, o); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) score(o risk.Observation) risk.Assessment {
	w.t.Helper()
	a, err := w.model.Score(w.ctx, o)
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// home is alice's usual login, day days after monday9 (weekdays only).
func home(day int) risk.Observation {
	t := monday9.Add(time.Duration(day/5*7+day%5) * 24 * time.Hour).Add(time.Duration(day%3) * 17 * time.Minute)
	return risk.Observation{User: detect.AccountKey("alice"), IP: netip.MustParseAddr("81.2.69.160"),
		Country: "DE", ASN: 3320, UserAgent: chromeWin, Time: t}
}

// population teaches the global tables: 60 other users at home in a few
// countries, on the usual browsers, over the weeks alice learns.
func (w *world) population() {
	countries := []struct {
		cc  string
		asn uint32
	}{{"DE", 3320}, {"DE", 3209}, {"FR", 3215}, {"GB", 2856}, {"US", 7922}, {"US", 7018}}
	for u := range 60 {
		c := countries[u%len(countries)]
		ua := []string{chromeWin, iphone}[u%2]
		for d := range 20 {
			w.learn(risk.Observation{User: detect.AccountKey(fmt.Sprint("user", u)),
				IP:      netip.AddrFrom4([4]byte{80, byte(u), 1, 1}),
				Country: c.cc, ASN: c.asn, UserAgent: ua,
				Time: monday9.Add(time.Duration(d)*24*time.Hour + time.Duration(u%12)*time.Hour)})
		}
	}
}

// learned is a world where alice logged in 30 times from home.
func learned(t *testing.T) *world {
	w := newWorld(t)
	w.population()
	for d := range 30 {
		w.learn(home(d))
	}
	return w
}

func TestLearnedUserAtHomeScoresLow(t *testing.T) {
	w := learned(t)
	a := w.score(home(31))
	if !a.Learned || a.Logins != 30 {
		t.Fatalf("learned %v after %d logins", a.Learned, a.Logins)
	}
	if a.Score != 0 || a.DB > 0 {
		t.Fatalf("alice at home: score %d (%.1f dB), drivers %+v", a.Score, a.DB, a.Drivers())
	}
	// a browser update is not a new browser
	o := home(32)
	o.UserAgent = strings.Replace(chromeWin, "Chrome/124", "Chrome/125", 1)
	if a := w.score(o); a.Score >= risk.DefaultChallenge || !a.Features[risk.Browser].Seen {
		t.Fatalf("after a browser update: score %d, drivers %+v", a.Score, a.Drivers())
	}
}

func TestNewCountryNetworkAndScriptScoresHigh(t *testing.T) {
	w := learned(t)
	o := home(31)
	o.IP, o.Country, o.ASN, o.UserAgent = netip.MustParseAddr("45.95.168.7"), "RU", 49505, "python-requests/2.31.0"
	a := w.score(o)
	if a.Score < risk.DefaultBlock {
		t.Fatalf("new country, network and a script: score %d (%.1f dB), want ≥ %d; %+v", a.Score, a.DB, risk.DefaultBlock, a.Features)
	}
	for _, f := range []risk.Feature{risk.IP, risk.ASN, risk.Country, risk.Browser, risk.OS, risk.Device} {
		if c := a.Features[f]; !c.Known || c.Seen || c.DB <= 0 {
			t.Errorf("%s: %+v", f, c)
		}
	}
	// the same from the user's own country and a browser is still a challenge
	o.Country, o.UserAgent = "DE", chromeWin
	if a := w.score(o); a.Score < risk.DefaultChallenge || a.Score >= risk.DefaultBlock {
		t.Fatalf("new network, known country and browser: score %d (%.1f dB)", a.Score, a.DB)
	}
}

func TestLearningPhaseScoresZero(t *testing.T) {
	w := newWorld(t)
	w.population()
	attack := risk.Observation{User: detect.AccountKey("bob"), IP: netip.MustParseAddr("45.95.168.7"),
		Country: "RU", ASN: 49505, UserAgent: "curl/8.5.0", Time: monday9}
	for i := range risk.DefaultLearn {
		a := w.score(attack)
		if a.Score != 0 || a.Learned || a.Logins != int64(i) {
			t.Fatalf("after %d logins: score %d, learned %v, logins %d", i, a.Score, a.Learned, a.Logins)
		}
		o := home(i)
		o.User = attack.User
		w.learn(o)
	}
	// five logins say less than thirty: an alert, not yet a block
	if a := w.score(attack); !a.Learned || a.Score < risk.DefaultAlert {
		t.Fatalf("once learned: score %d, learned %v", a.Score, a.Learned)
	}
}

func TestUnusedHourRaisesScore(t *testing.T) {
	w := learned(t)
	usual := w.score(home(31))
	o := home(31)
	o.Time = time.Date(2026, 4, 12, 3, 30, 0, 0, time.UTC) // a Sunday, 03:30 UTC
	night := w.score(o)
	if c := night.Features[risk.Hour]; c.Seen || c.DB <= 0 || night.DB <= usual.DB {
		t.Fatalf("Sunday 03:30: hour %+v, %.1f dB against %.1f dB at the usual hour", c, night.DB, usual.DB)
	}
	// the usual hour on another weekday, or an hour off, is familiar
	o.Time = time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC) // a Friday, 10:00
	if c := w.score(o).Features[risk.Hour]; !c.Seen || c.DB > night.Features[risk.Hour].DB/2 {
		t.Fatalf("Friday 10:00: %+v", c)
	}
}

func TestDetailsStrongestFirstWithoutRawAgent(t *testing.T) {
	w := learned(t)
	o := home(31)
	o.IP, o.Country, o.ASN = netip.MustParseAddr("45.95.168.7"), "RU", 49505
	o.UserAgent = "curl/8.5.0 secret-token-4f9a"
	a := w.score(o)
	d := a.Details(o)
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "secret-token") || strings.Contains(string(raw), "8.5.0") {
		t.Fatalf("details carry the raw User-Agent: %s", raw)
	}
	if d["risk_score"] != a.Score || d["learned"] != true {
		t.Fatalf("details %s", raw)
	}
	features := d["features"].([]map[string]any)
	if len(features) != risk.NumFeatures {
		t.Fatalf("%d features in %s", len(features), raw)
	}
	for i := 1; i < len(features); i++ {
		if features[i]["db"].(float64) > features[i-1]["db"].(float64) {
			t.Fatalf("not strongest first: %s", raw)
		}
	}
	drivers := a.Drivers()
	if len(drivers) == 0 || features[0]["feature"] != drivers[0].Feature.String() {
		t.Fatalf("drivers %+v, details %s", drivers, raw)
	}
	want := map[string]string{"ip": "45.95.168.7", "asn": "AS49505", "country": "RU", "browser": "curl", "device": "script"}
	for _, f := range features {
		if v, ok := want[f["feature"].(string)]; ok && f["value"] != v {
			t.Errorf("%s = %v, want %s", f["feature"], f["value"], v)
		}
	}
}

func TestAbsurdAgentsNeverPanic(t *testing.T) {
	w := learned(t)
	agents := []string{
		"",
		strings.Repeat("A", 100<<10),
		strings.Repeat("Mozilla/5.0 (Windows NT 10.0) Chrome/", 4000),
		"\x00\x01\x02\xff\xfe\xfd",
		"Mozilla/5.0 \xc3\x28 (\xed\xa0\x80) Chrome/1\xff",
		"Chrome/99999999999999999999999999",
		string(make([]byte, 4096)),
	}
	for i, ua := range agents {
		o := home(31)
		o.UserAgent = ua
		a := w.score(o)
		for _, f := range a.Details(o)["features"].([]map[string]any) {
			if s := f["value"].(string); !utf8.ValidString(s) || len(s) > 300 {
				t.Errorf("agent %d: %s = %q", i, f["feature"], s)
			}
		}
		w.learn(o)
		if ag := risk.ParseAgent(ua); len(ag.Browser) > 64 || len(ag.OS) > 64 {
			t.Errorf("agent %d parsed as %+v", i, ag)
		}
	}
	if a := risk.ParseAgent(""); a.Device != risk.DeviceScript {
		t.Fatalf("an empty agent: %+v", a)
	}
}

func TestParseAgent(t *testing.T) {
	for ua, want := range map[string]risk.Agent{
		chromeWin:                   {Browser: "Chrome", Major: 124, OS: "Windows", Device: risk.DeviceDesktop},
		iphone:                      {Browser: "Safari", Major: 17, OS: "iOS", Device: risk.DeviceMobile},
		"curl/8.5.0":                {Browser: "curl", Device: risk.DeviceScript},
		"Mozilla/5.0 (Hydra)":       {Browser: "hydra", Device: risk.DeviceScript},
		"Python/3.11 aiohttp/3.9.3": {Browser: "python", Device: risk.DeviceScript},
	} {
		if got := risk.ParseAgent(ua); got != want {
			t.Errorf("%q: %+v, want %+v", ua, got, want)
		}
	}
}

func TestOptions(t *testing.T) {
	if _, err := risk.New(nil, risk.Options{}); err == nil {
		t.Fatal("no store accepted")
	}
	for _, o := range []risk.Options{{HalfLife: time.Minute}, {Learn: -1}, {K: 65}, {GlobalK: 8}, {Forget: time.Minute}} {
		if _, err := risk.New(store.NewMemoryRisk(0, nil), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	m, err := risk.New(store.NewMemoryRisk(0, nil), risk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := m.Options(); o.HalfLife != risk.DefaultHalfLife || o.Learn != risk.DefaultLearn || o.Forget != 8*risk.DefaultHalfLife {
		t.Fatalf("defaults %+v", o)
	}
}

func TestGlobalGeneration(t *testing.T) {
	hl := 30 * 24 * time.Hour
	origin := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	span := risk.GlobalGenerationHalfLives * hl
	for _, c := range []struct {
		at  time.Time
		gen int64
	}{{origin, 0}, {origin.Add(span - 1), 0}, {origin.Add(span), 1}, {origin.Add(-1), -1}, {origin.Add(-span), -1}} {
		gen, epoch := risk.GlobalGeneration(c.at, hl)
		if gen != c.gen || epoch.After(c.at) || c.at.Sub(epoch) >= span {
			t.Errorf("%v: generation %d from %v, want %d", c.at, gen, epoch, c.gen)
		}
	}
}
