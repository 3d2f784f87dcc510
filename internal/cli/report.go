package cli

import (
	"fmt"
	"net/url"
	"os"
)

// Report is `caddy vigil report`: the compliance report of a period
// (query: from, to, format) from GET /vigil/report, printed as the API
// renders it (HTML, CSV or JSON), or written to the file at path.
func (e Env) Report(query url.Values, path string) error {
	raw, err := e.get("/vigil/report?" + query.Encode())
	if err != nil {
		return err
	}
	if path == "" {
		_, err = e.Out.W.Write(raw)
		return err
	}
	// a report names users and addresses: for its owner only
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	fmt.Fprintf(e.Notes, "report written to %s (%d bytes)\n", path, len(raw))
	return nil
}
