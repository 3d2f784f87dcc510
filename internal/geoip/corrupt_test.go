package geoip

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigilsec/vigil/internal/geotest"
)

// A file whose metadata is intact but whose records are garbage (a disk
// error, a bad download that kept its tail) is refused at load: the self
// test decodes records the way Locate will.
func TestCorruptDataSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	if err := geotest.WriteCity(path, geotest.Documentation); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	md := r.Metadata
	start := int(md.NodeCount*md.RecordSize/4) + 16
	end := bytes.LastIndex(data, []byte("\xAB\xCD\xEFMaxMind.com"))
	for i := start; i < end; i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, "")
	if err == nil || !strings.Contains(err.Error(), "loading geoip database "+path+": corrupt record") {
		t.Fatalf("Open = %v, want a corrupt record error naming the file", err)
	}
}
