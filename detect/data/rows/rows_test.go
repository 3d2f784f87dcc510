package rows

import (
	"errors"
	"testing"
)

func TestFormatOf(t *testing.T) {
	cases := map[string]Format{
		"text/csv":                          CSV,
		"text/CSV; charset=utf-8":           CSV,
		" application/csv ;header=present":  CSV,
		"application/x-ndjson":              NDJSON,
		"application/ndjson":                NDJSON,
		"application/jsonl; charset=utf-8":  NDJSON,
		"application/x-jsonlines":           NDJSON,
		"application/json-seq":              NDJSON,
		"application/json":                  JSONArray,
		"Application/JSON; charset=UTF-8":   JSONArray,
		"application/vnd.api+json":          JSONArray,
		"application/problem+JSON":          JSONArray,
		"text/html":                         None,
		"application/jsonx":                 None,
		"+json":                             None,
		"":                                  None,
		"application/octet-stream; a=+json": None,
	}
	for ct, want := range cases {
		if got := FormatOf(ct); got != want {
			t.Errorf("FormatOf(%q) = %s, want %s", ct, got, want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { FormatOf("application/vnd.x+json; charset=utf-8") }); a != 0 {
		t.Errorf("FormatOf allocates %v times", a)
	}
}

type tcase struct {
	in     string
	header bool
	rows   int64
	err    error
}

func TestCSV(t *testing.T) {
	for _, tc := range []tcase{
		{in: "", rows: 0},
		{in: "a,b\n", rows: 1},
		{in: "a,b", rows: 1},
		{in: "a,b\r\nc,d\r\n", rows: 2},
		{in: "a,b\r\nc,d", rows: 2},
		{in: "\n\n\na\n\n", rows: 1},
		{in: "\r\n\r\na\r\n\r\n", rows: 1},
		{in: "\r", rows: 0},
		{in: "a\r", rows: 1},
		{in: " \n", rows: 1},
		{in: "\"\"\n", rows: 1},
		{in: "\"a\nb\",c\n", rows: 1},
		{in: "\"a\r\n\r\nb\",c\r\nd,e\r\n", rows: 2},
		{in: "\"x\"\"y\",z\n\"\"\"\"\n", rows: 2},
		{in: "\"a,b\",\"c\"\"\nd\"\n1,2", rows: 2},
		{in: "\xEF\xBB\xBFid,name\n1,é\n", rows: 2},
		{in: "a,\"€\n✓\",b\n", rows: 1},
		{in: "h1,h2\n1,2\n3,4\n", header: true, rows: 2},
		{in: "h1,h2\n", header: true, rows: 0},
		{in: "h1,h2", header: true, rows: 0},
		{in: "", header: true, rows: 0},
		{in: "\"h\n1\",h2\r\n\r\n1,2", header: true, rows: 1},
		{in: "a,b\n\"unterminated\n", rows: 1, err: ErrUnterminatedQuote},
		{in: "\"", rows: 0, err: ErrUnterminatedQuote},
	} {
		want := result{tc.rows, tc.err}
		check(t, CSV, tc.header, []byte(tc.in), &want)
		if ref, ok := refCSV([]byte(tc.in), tc.header); ok != (tc.err == nil) || ok && ref != tc.rows {
			t.Errorf("encoding/csv disagrees with the table on %q: %d, %v", tc.in, ref, ok)
		}
	}
}

func TestNDJSON(t *testing.T) {
	for _, tc := range []tcase{
		{in: "", rows: 0},
		{in: "{}\n{}\n", rows: 2},
		{in: "{}\n{}", rows: 2},
		{in: "{}\r\n{}\r\n", rows: 2},
		{in: "\n \n\t\r\n{}\r\n\n", rows: 1},
		{in: "  {\"a\":\"x\\ny\"}  \n \v\f\n", rows: 1},
		{in: "\x1e{\"a\":1}\n\x1e[2]\n", rows: 2},
		{in: "not json\n", rows: 1},
		{in: "{\"é\":\"✓\"}\n", rows: 1},
		{in: "h\n1\n", header: true, rows: 2}, // header applies to CSV only
	} {
		want := result{tc.rows, tc.err}
		check(t, NDJSON, tc.header, []byte(tc.in), &want)
		if ref := refNDJSON([]byte(tc.in)); ref != tc.rows {
			t.Errorf("reference disagrees with the table on %q: %d", tc.in, ref)
		}
	}
}

func TestJSONArray(t *testing.T) {
	for _, tc := range []tcase{
		{in: "[]", rows: 0},
		{in: " \r\n\t[ \n ] \n", rows: 0},
		{in: "[1,2,3]", rows: 3},
		{in: "[{\"a\":[1,2]},\"x,]\"]", rows: 2},
		{in: `["a\"b","c\\",  "\\\"]"  ]`, rows: 3},
		{in: `["\\"]`, rows: 1},
		{in: `[{"k\"}":"v\\"}, {"a":{"b":[[],{}]}}]`, rows: 2},
		{in: "[[],[[]],{},[{}]]", rows: 4},
		{in: "[null,true,false,-1.5e+3,0]", rows: 5},
		{in: "\xEF\xBB\xBF[1]", rows: 1},
		{in: "\xEF\xBB\xBF \n[\"é\",\"✓\",\"\\u00e9\"]\n", rows: 3},
		{in: "[1,2]  \n", rows: 2},
		{in: "", err: ErrEmpty},
		{in: " \n ", err: ErrEmpty},
		{in: "\xEF\xBB", err: ErrNotArray},
		{in: "\xEF\xBB[1]", err: ErrNotArray},
		{in: " \xEF\xBB\xBF[1]", err: ErrNotArray},
		{in: `{"a":1}`, err: ErrNotArray},
		{in: `"x"`, err: ErrNotArray},
		{in: "[1,2]x", rows: 2, err: ErrTrailing},
		{in: "[1,2] [3]", rows: 2, err: ErrTrailing},
		{in: "[1,2", rows: 1, err: ErrTruncated},
		{in: "[1,2,", rows: 2, err: ErrTruncated},
		{in: `[{"a":1},{"b":`, rows: 1, err: ErrTruncated},
		{in: `["abc`, rows: 0, err: ErrTruncated},
		{in: `["abc\`, rows: 0, err: ErrTruncated},
		{in: `[{"a":1]`, rows: 0, err: ErrUnbalanced},
		{in: `[[1}]`, rows: 0, err: ErrUnbalanced},
		{in: `[{}}]`, rows: 1, err: ErrSyntax},
		{in: "[1,]", rows: 1, err: ErrSyntax},
		{in: "[,1]", rows: 0, err: ErrSyntax},
		{in: "[1 2]", rows: 1, err: ErrSyntax},
		{in: `[1"a"]`, rows: 1, err: ErrSyntax},
		{in: "[]]", rows: 0, err: ErrTrailing},
	} {
		want := result{tc.rows, tc.err}
		check(t, JSONArray, false, []byte(tc.in), &want)
		if ref, ok := refJSON([]byte(tc.in)); ok != (tc.err == nil) || ok && ref != tc.rows {
			t.Errorf("encoding/json disagrees with the table on %q: %d, %v", tc.in, ref, ok)
		}
	}
}

// TestDeepNesting goes past the depth whose bracket kinds are remembered:
// the count stays right, and mismatches within that depth are still found.
func TestDeepNesting(t *testing.T) {
	deep := func(open, close string, d int) string {
		s := ""
		for range d {
			s += open
		}
		for range d {
			s += close
		}
		return s
	}
	for _, d := range []int{1, 63, 64, 65, int(maxKinds) - 1, int(maxKinds), int(maxKinds) + 5, 1000} {
		in := "[" + deep("[", "]", d) + "," + deep(`{"a":`, "}", d) + `,1]`
		got := feed(t, JSONArray, false, []byte(in), nil)
		if got.rows != 3 || got.err != nil {
			t.Fatalf("depth %d: got %d, %v", d, got.rows, got.err)
		}
	}
	in := "[" + deep("[", "}", int(maxKinds)-2) + "]"
	if got := feed(t, JSONArray, false, []byte(in), nil); !errors.Is(got.err, ErrUnbalanced) {
		t.Fatalf("mismatch at depth %d: got %d, %v", maxKinds-2, got.rows, got.err)
	}
}

func TestNoneAndZero(t *testing.T) {
	var c Counter // the zero value counts nothing
	c.Write([]byte("a\nb\n"))
	if n, err := c.Close(); n != 0 || err != nil {
		t.Fatalf("zero Counter: %d, %v", n, err)
	}
	c.Reset(None, true)
	c.Write([]byte("[1,2]"))
	if n, err := c.Close(); n != 0 || err != nil {
		t.Fatalf("None: %d, %v", n, err)
	}
	c.Reset(CSV, false) // Reset clears what came before
	c.Write([]byte("\"a\n"))
	c.Reset(CSV, false)
	c.Write([]byte("a\n"))
	if n, err := c.Close(); n != 1 || err != nil {
		t.Fatalf("after Reset: %d, %v", n, err)
	}
}

func TestRowsWhileStreaming(t *testing.T) {
	var c Counter
	c.Reset(JSONArray, false)
	c.Write([]byte(`[{"a":1},{"b"`))
	if c.Rows() != 1 {
		t.Fatalf("after the first object: %d", c.Rows())
	}
	c.Write([]byte(`:2}`))
	if c.Rows() != 2 {
		t.Fatalf("after the second object: %d", c.Rows())
	}
	c.Reset(CSV, true)
	c.Write([]byte("h\n1\n2"))
	if c.Rows() != 1 {
		t.Fatalf("csv with header, before Close: %d", c.Rows())
	}
	if n, _ := c.Close(); n != 2 {
		t.Fatalf("csv with header, at Close: %d", n)
	}
}
