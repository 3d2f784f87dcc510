package risk

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseAgent checks that no User-Agent makes the parser panic, that
// what it keeps is bounded, valid text (the parser's names, never the header's), and
// that only the first MaxAgentBytes count. The seed corpus is in
// testdata/fuzz/FuzzParseAgent.
func FuzzParseAgent(f *testing.F) {
	f.Add("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
	f.Add("curl/8.5.0")
	f.Add("")
	f.Fuzz(func(t *testing.T, ua string) {
		a := ParseAgent(ua)
		if a.Device > DeviceScript || a.Major < 0 || a.Major > maxMajor {
			t.Fatalf("%q: %+v", ua, a)
		}
		for _, s := range []string{a.Browser, a.OS, a.BrowserName(), a.Device.String()} {
			if len(s) > 40 || !utf8.ValidString(s) {
				t.Fatalf("%q: kept %q", ua, s)
			}
		}
		if len(ua) > MaxAgentBytes {
			if b := ParseAgent(ua[:MaxAgentBytes] + "tail"); b != a {
				t.Fatalf("%q: the bytes past %d counted: %+v / %+v", ua, MaxAgentBytes, a, b)
			}
		}
		if b := ParseAgent(ua); b != a {
			t.Fatalf("%q parsed twice: %+v / %+v", ua, a, b)
		}
		k1, k2, k3 := a.keys()
		var near [NumNear]uint64
		versionNear(&near, k1)
		if near[NearHours] == k1 || k2 == k3 {
			t.Fatalf("%q: keys %x %x %x near %x", ua, k1, k2, k3, near)
		}
	})
}
