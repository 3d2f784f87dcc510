package detect

import "testing"

// TestNormalizeUserMeetsTheAppsEquality: names an app treats as one
// account share one key; different accounts stay apart.
func TestNormalizeUserMeetsTheAppsEquality(t *testing.T) {
	same := [][]string{
		{"alice", "Alice", " ALICE ", "ａｌｉｃｅ", "Ａｌｉｃｅ", "alice\t"},
		{"bob@example.com", "BOB@EXAMPLE.COM", "ｂｏｂ＠ｅｘａｍｐｌｅ．ｃｏｍ"},
		{"josé", "JOSÉ", "jose\u0301"},
		{"straße", "STRAßE"},
		{"john smith", "John Smith", "JOHN SMITH"},
	}
	for _, group := range same {
		want := NormalizeUser(group[0])
		for _, u := range group[1:] {
			if got := NormalizeUser(u); got != want {
				t.Errorf("NormalizeUser(%q) = %q, NormalizeUser(%q) = %q: want one account", u, got, group[0], want)
			}
			if AccountKey(u) != AccountKey(group[0]) {
				t.Errorf("AccountKey(%q) differs from AccountKey(%q)", u, group[0])
			}
		}
	}
	for _, pair := range [][2]string{{"alice", "alice2"}, {"jose", "josé"}, {"bob", "b0b"}} {
		if NormalizeUser(pair[0]) == NormalizeUser(pair[1]) {
			t.Errorf("%q and %q became one account", pair[0], pair[1])
		}
	}
	if n := testingAllocs(func() { NormalizeUser("alice") }); n != 0 {
		t.Errorf("an already canonical name costs %v allocations", n)
	}
}

func testingAllocs(f func()) float64 { return testing.AllocsPerRun(100, f) }
