package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/respond"
)

// `caddy vigil decisions export` and `import`. The bodies go to and from
// the admin API as they are, streamed (an export of a million decisions is
// not held whole), and never re-encoded: a CSV file reaches the API byte
// for byte, so its line numbers are the file's.

// Export is `caddy vigil decisions export`: the active decisions that
// filters select (kind, target), in format, to the file at path or, when
// path is empty or "-", to the output.
func (e Env) Export(format string, filters url.Values, path string) error {
	f, err := respond.ParseFormat(format)
	if err != nil {
		return err
	}
	q := url.Values{"format": {string(f)}}
	for k, v := range filters {
		q[k] = v
	}
	resp, err := e.Admin.Stream(http.MethodGet, "/vigil/decisions/export?"+q.Encode(), nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if path != "" && path != "-" {
		err = writeExport(path, resp.Body)
	} else if _, err = io.Copy(e.Out.W, resp.Body); err != nil {
		err = fmt.Errorf("writing the export: %w", err)
	}
	if n := resp.Header.Get("X-Vigil-Skipped"); err == nil && n != "" && n != "0" {
		fmt.Fprintf(e.Notes, "%s locks and revocations left out: the CrowdSec formats hold blocks only\n", n)
	}
	return err
}

// writeExport writes an export to a file only its owner reads (decisions
// name users), and removes what it wrote if the export broke off.
func writeExport(path string, body io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the export: %w", err)
	}
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Import is `caddy vigil decisions import`: the decisions in the file
// name, or in stdin when name is "-", in format (empty: guessed from the
// file), posted to the admin API whole; its answer is printed as JSON.
func (e Env) Import(name, format string, stdin io.Reader) error {
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("opening the import: %w", err)
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, respond.MaxImportBytes+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > respond.MaxImportBytes {
		return fmt.Errorf("%s: an import is at most %d MiB", name, respond.MaxImportBytes>>20)
	}
	f, err := respond.ParseFormat(cmp.Or(format, guessFormat(name, data)))
	if err != nil {
		return err
	}
	ctype := "application/json"
	if f == respond.FormatCrowdSecCSV {
		ctype = "text/csv"
	}
	resp, err := e.Admin.Stream(http.MethodPost, "/vigil/decisions/import?format="+string(f),
		http.Header{"Content-Type": {ctype}}, bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return renderJSON(e.Out, raw)
}

// guessFormat tells the format of a file given without --format: CSV by
// its extension, CrowdSec's JSON by items that carry a "value" and no
// "kind", Vigil's JSON otherwise.
func guessFormat(name string, data []byte) string {
	if strings.EqualFold(filepath.Ext(name), ".csv") {
		return string(respond.FormatCrowdSecCSV)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var first map[string]json.RawMessage
	if tok, err := dec.Token(); err == nil && tok == json.Delim('[') && dec.Decode(&first) == nil {
		_, value := first["value"]
		_, kind := first["kind"]
		if value && !kind {
			return string(respond.FormatCrowdSecJSON)
		}
	}
	return string(respond.FormatVigil)
}
