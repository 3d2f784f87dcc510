package rows

import (
	"math/rand/v2"
	"testing"
)

// fuzzOne feeds data in one write, byte by byte and in random chunks, and
// fails unless all agree; it returns the one-write result.
func fuzzOne(t *testing.T, f Format, header bool, data []byte, seed uint64) result {
	whole := feed(t, f, header, data, nil)
	bytewise := make([]int, 0, len(data))
	for i := 1; i < len(data); i++ {
		bytewise = append(bytewise, i)
	}
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	for _, cuts := range [][]int{bytewise, randomCuts(rng, len(data)), randomCuts(rng, len(data))} {
		if got := feed(t, f, header, data, cuts); got != whole {
			t.Fatalf("%s %q cut at %v: got %d, %v; in one write %d, %v", f, data, cuts, got.rows, got.err, whole.rows, whole.err)
		}
	}
	return whole
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{"a,b\n", "\"a\nb\",c\r\n\r\nd", "\"x\"\"y\",z\n\"\"\"\"\n", "\r\n\r", "\"", "h\n1\n2"} {
		f.Add([]byte(s), false, uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, header bool, seed uint64) {
		got := fuzzOne(t, CSV, header, data, seed)
		if want, ok := refCSV(data, header); ok && (got.rows != want || got.err != nil) {
			t.Fatalf("%q: got %d, %v; encoding/csv %d", data, got.rows, got.err, want)
		}
	})
}

func FuzzNDJSON(f *testing.F) {
	for _, s := range []string{"{}\n{}", "\n \t\r\n{\"a\":1}\r\n", "\x1e[1]\n", " \v\f"} {
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		got := fuzzOne(t, NDJSON, false, data, seed)
		if want := refNDJSON(data); got.rows != want || got.err != nil {
			t.Fatalf("%q: got %d, %v; reference %d", data, got.rows, got.err, want)
		}
	})
}

func FuzzJSONArray(f *testing.F) {
	for _, s := range []string{"[]", "[1,2,3]", `[{"a":[1,2]},"x,]"]`, `["a\"b","c\\"]`, "\xEF\xBB\xBF [null,true]", `{"a":1}`, "[1,2] x", `[{"a":1]`} {
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		got := fuzzOne(t, JSONArray, false, data, seed)
		if want, ok := refJSON(data); ok && (got.rows != want || got.err != nil) {
			t.Fatalf("%q: got %d, %v; encoding/json %d", data, got.rows, got.err, want)
		}
	})
}
