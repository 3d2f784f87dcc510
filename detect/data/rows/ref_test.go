package rows

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// refCSV counts records with encoding/csv; ok is false when it rejects the
// input, in which case the counter's result is not compared.
func refCSV(data []byte, header bool) (n int64, ok bool) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	for {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, false
		}
		n++
	}
	if header && n > 0 {
		n--
	}
	return n, true
}

// refNDJSON counts the lines that hold a byte other than blank ones.
func refNDJSON(data []byte) int64 {
	var n int64
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(bytes.Trim(line, " \t\r\v\f")) > 0 {
			n++
		}
	}
	return n
}

// refJSON counts the items of a top-level array with encoding/json's
// Decoder, after removing a leading BOM; ok is false when it rejects the
// input (including anything but whitespace after the array).
func refJSON(data []byte) (n int64, ok bool) {
	data = bytes.TrimPrefix(data, bom[:])
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return 0, false
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, false
		}
		n++
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return 0, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return 0, false
	}
	return n, true
}

// result is what a Counter says about a whole body.
type result struct {
	rows int64
	err  error
}

// feed writes data to a fresh counter in chunks cut at the given ascending
// positions, checking on the way that Rows never goes down and that Write
// never keeps a reference to its input (each chunk is scribbled over after
// the call).
func feed(t testing.TB, f Format, header bool, data []byte, cuts []int) result {
	t.Helper()
	var c Counter
	c.Reset(f, header)
	prev, last := int64(0), 0
	buf := make([]byte, 0, len(data))
	for _, cut := range append(cuts, len(data)) {
		chunk := append(buf[:0], data[last:cut]...)
		c.Write(chunk)
		for i := range chunk {
			chunk[i] = '"'
		}
		last = cut
		if r := c.Rows(); r < prev {
			t.Fatalf("Rows went down from %d to %d at %d", prev, r, cut)
		} else {
			prev = r
		}
	}
	rows, err := c.Close()
	if rows < prev {
		t.Fatalf("Close returned %d rows after Rows said %d", rows, prev)
	}
	if r2, err2 := c.Close(); r2 != rows || err2 != err {
		t.Fatalf("second Close = %d, %v; first %d, %v", r2, err2, rows, err)
	}
	return result{rows, err}
}

// randomCuts cuts data of length n into chunks of random sizes, mostly
// small so that every kind of split happens.
func randomCuts(rng *rand.Rand, n int) []int {
	var cuts []int
	for at := 0; ; {
		at += 1 + rng.IntN(1+rng.IntN(16))
		if at >= n {
			return cuts
		}
		cuts = append(cuts, at)
	}
}

// chunkings returns the cut lists a small input is fed with: one write, one
// byte at a time, one cut at every position and a few random ones.
func chunkings(n int, seed uint64) [][]int {
	all := [][]int{nil}
	bytewise := make([]int, 0, n)
	for i := 1; i < n; i++ {
		bytewise = append(bytewise, i)
		all = append(all, []int{i})
	}
	all = append(all, bytewise)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for range 4 {
		all = append(all, randomCuts(rng, n))
	}
	return all
}

// check feeds data with every chunking and fails unless all of them agree
// with each other and with want (when want is non-nil).
func check(t *testing.T, f Format, header bool, data []byte, want *result) result {
	t.Helper()
	var first result
	for i, cuts := range chunkings(len(data), uint64(len(data))) {
		got := feed(t, f, header, data, cuts)
		if i == 0 {
			first = got
			if want != nil && (got.rows != want.rows || !errors.Is(got.err, want.err)) {
				t.Fatalf("%s %q: got %d, %v; want %d, %v", f, data, got.rows, got.err, want.rows, want.err)
			}
			continue
		}
		if got != first {
			t.Fatalf("%s %q cut at %v: got %d, %v; in one write %d, %v", f, data, cuts, got.rows, got.err, first.rows, first.err)
		}
	}
	return first
}
