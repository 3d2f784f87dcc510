package rows

import "testing"

// benchExport writes a ~8 MiB generated customer export (ten columns, some
// quoted or escaped fields) in 64 KiB chunks, as a proxy copies a body.
func benchExport(b *testing.B, f Format, data []byte) {
	const chunk = 64 << 10
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var c Counter
	for b.Loop() {
		c.Reset(f, true)
		for i := 0; i < len(data); i += chunk {
			c.Write(data[i:min(i+chunk, len(data))])
		}
		if _, err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

const benchRecords = 40000

func BenchmarkCSV(b *testing.B) {
	data, _, _ := exportData(benchRecords, 42)
	benchExport(b, CSV, data)
}

func BenchmarkNDJSON(b *testing.B) {
	_, data, _ := exportData(benchRecords, 42)
	benchExport(b, NDJSON, data)
}

func BenchmarkJSONArray(b *testing.B) {
	_, _, data := exportData(benchRecords, 42)
	benchExport(b, JSONArray, data)
}
