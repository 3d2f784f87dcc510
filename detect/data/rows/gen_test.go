package rows

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// customer is one record of the generated export: ten columns, some of them
// needing CSV quotes (commas, quotes, newlines) or JSON escapes.
type customer struct {
	ID      int    `json:"id"`
	First   string `json:"first_name"`
	Last    string `json:"last_name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
	City    string `json:"city"`
	Country string `json:"country"`
	Created string `json:"created_at"`
	Note    string `json:"note"`
}

var (
	firsts = []string{"Ana", "Bob", "Chloé", "Dmitri", "Eve", "François", "Günter", "Hana"}
	lasts  = []string{"Smith", "O'Neil", "Müller", "Nguyen", "Dupont", "García", "Kowalski"}
	cities = []string{"Paris", "Berlin", "São Paulo", "New York, NY", "Zürich", "Tokyo"}
	notes  = []string{"", "", "VIP", `said "call me later"`, "line one\nline two", `path C:\temp\`, "a, b and c"}
)

// exportData generates n customers as CSV (with a header), NDJSON and a
// JSON array, the same records in all three.
func exportData(n int, seed uint64) (csvData, ndjson, array []byte) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var cb, nb, ab bytes.Buffer
	w := csv.NewWriter(&cb)
	_ = w.Write([]string{"id", "first_name", "last_name", "email", "phone", "address", "city", "country", "created_at", "note"})
	ab.WriteString("[\n")
	for i := range n {
		c := customer{
			ID:      100000 + i,
			First:   firsts[rng.IntN(len(firsts))],
			Last:    lasts[rng.IntN(len(lasts))],
			Phone:   fmt.Sprintf("+33 6 %02d %02d %02d %02d", rng.IntN(100), rng.IntN(100), rng.IntN(100), rng.IntN(100)),
			Address: fmt.Sprintf("%d rue de la Paix, Apt %d", 1+rng.IntN(200), 1+rng.IntN(50)),
			City:    cities[rng.IntN(len(cities))],
			Country: "FR",
			Created: fmt.Sprintf("2024-%02d-%02dT%02d:%02d:00Z", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60)),
			Note:    notes[rng.IntN(len(notes))],
		}
		c.Email = fmt.Sprintf("%s.%s%d@example.com", c.First, c.Last, i)
		_ = w.Write([]string{fmt.Sprint(c.ID), c.First, c.Last, c.Email, c.Phone, c.Address, c.City, c.Country, c.Created, c.Note})
		line, _ := json.Marshal(c)
		nb.Write(line)
		nb.WriteByte('\n')
		if i > 0 {
			ab.WriteString(",\n")
		}
		ab.Write(line)
	}
	ab.WriteString("\n]\n")
	w.Flush()
	return cb.Bytes(), nb.Bytes(), ab.Bytes()
}

// TestGeneratedExport checks a realistic export of a few thousand records
// against the references, fed in chunks of random sizes.
func TestGeneratedExport(t *testing.T) {
	const n = 3000
	csvData, ndjson, array := exportData(n, 7)
	if ref, ok := refCSV(csvData, true); !ok || ref != n {
		t.Fatalf("encoding/csv: %d, %v", ref, ok)
	}
	if ref, ok := refJSON(array); !ok || ref != n {
		t.Fatalf("encoding/json: %d, %v", ref, ok)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		f    Format
		data []byte
	}{{CSV, csvData}, {NDJSON, ndjson}, {JSONArray, array}} {
		for _, cuts := range [][]int{nil, randomCuts(rng, len(tc.data)), everyN(len(tc.data), 4096)} {
			if got := feed(t, tc.f, tc.f == CSV, tc.data, cuts); got.rows != n || got.err != nil {
				t.Errorf("%s: got %d, %v; want %d", tc.f, got.rows, got.err, n)
			}
		}
	}
}

func everyN(length, n int) []int {
	var cuts []int
	for at := n; at < length; at += n {
		cuts = append(cuts, at)
	}
	return cuts
}

// TestHugeRecord streams a single 256 MiB record through each format from
// one reused 64 KiB buffer: the state does not grow with a record (the
// counter holds no slice), and nothing is counted until the record ends.
// The same loop would take a 10 GB line; it is kept short for the test.
func TestHugeRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 768 MiB")
	}
	const total = 256 << 20
	chunk := bytes.Repeat([]byte(`ab\"c,\`), 64<<10/6)
	for _, tc := range []struct {
		f           Format
		head, tail  string
		rows        int64
		fill        []byte
		description string
	}{
		{CSV, "1,\"", "\",2\n", 1, bytes.ReplaceAll(chunk, []byte(`"`), []byte("\n")), "quoted field with newlines"},
		{NDJSON, "{\"a\":\"", "\"}\n", 1, bytes.ReplaceAll(chunk, []byte("\"c"), []byte("\\\\")), "one line"},
		{JSONArray, "[\"", "x\",1]", 2, chunk, "one string with escapes"},
	} {
		var c Counter
		c.Reset(tc.f, false)
		c.Write([]byte(tc.head))
		for sent := 0; sent < total; sent += len(tc.fill) {
			c.Write(tc.fill)
		}
		if c.Rows() != 0 {
			t.Errorf("%s: %d rows before the record ended", tc.description, c.Rows())
		}
		c.Write([]byte(tc.tail))
		if n, err := c.Close(); n != tc.rows || err != nil {
			t.Errorf("%s: got %d, %v; want %d", tc.description, n, err, tc.rows)
		}
	}
}

// TestWriteDoesNotAllocate: the counter is on the path of every byte of
// every data response.
func TestWriteDoesNotAllocate(t *testing.T) {
	csvData, ndjson, array := exportData(200, 1)
	for _, tc := range []struct {
		f    Format
		data []byte
	}{{CSV, csvData}, {NDJSON, ndjson}, {JSONArray, array}} {
		var c Counter
		allocs := testing.AllocsPerRun(20, func() {
			c.Reset(tc.f, true)
			for i := 0; i < len(tc.data); i += 1000 {
				c.Write(tc.data[i:min(i+1000, len(tc.data))])
			}
			if _, err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations", tc.f, allocs)
		}
	}
	if !errors.Is(errs[errTrailing], ErrTrailing) || len(errs) != int(errTrailing)+1 {
		t.Fatal("errs and the err* constants are out of step")
	}
}
