package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

// MaxBody bounds a webhook body. Receivers (and Slack, PagerDuty) refuse
// large bodies; an attacker controls part of the details (paths, user
// agents), so the bound is enforced here rather than trusted.
const MaxBody = 20 << 10

const (
	maxField       = 512  // user, site, city …
	maxDetailValue = 1024 // one details value, in bytes of JSON
)

// Body is the alert's JSON body, at most MaxBody bytes and always valid
// JSON: oversized fields and details values are shortened, then details keys
// are dropped (in sorted order, so the result is stable) until it fits.
func (a Alert) Body() []byte {
	if b := marshal(a); len(b) <= MaxBody {
		return b
	}
	a.Truncated = true
	a.Site, a.User, a.City, a.Country = cut(a.Site, maxField), cut(a.User, maxField), cut(a.City, maxField), cut(a.Country, maxField)
	keys := make([]string, 0, len(a.Details))
	for k := range a.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	short := make(map[string]any, len(keys))
	for _, k := range keys {
		short[cut(k, 128)] = shorten(a.Details[k])
	}
	a.Details = short
	if b := marshal(a); len(b) <= MaxBody {
		return b
	}
	// still too big (very many keys): keep keys while they fit
	a.Details = map[string]any{}
	base := len(marshal(a))
	budget := MaxBody - base - 64
	kept := map[string]any{}
	for _, k := range keys {
		v := short[cut(k, 128)]
		n := len(marshal(map[string]any{cut(k, 128): v}))
		if n > budget {
			break
		}
		kept[cut(k, 128)] = v
		budget -= n
	}
	kept["_omitted_keys"] = len(keys) - len(kept)
	a.Details = kept
	return marshal(a)
}

// shorten bounds one details value: long strings are cut, other values whose
// JSON is long become a cut string of that JSON.
func shorten(v any) any {
	if s, ok := v.(string); ok {
		return cut(s, maxDetailValue)
	}
	b := marshal(v)
	if len(b) <= maxDetailValue {
		return v
	}
	return cut(string(b), maxDetailValue)
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// marshal encodes without HTML escaping (receivers read the JSON, not a
// browser) so that sizes are what is sent.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// details hold values from detectors (numbers, strings, lists);
		// anything unencodable is reported rather than lost silently
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(map[string]string{"error": "unencodable alert: " + err.Error()})
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Bounded returns the alert as its body carries it: unchanged when it fits
// in MaxBody, otherwise with the shortened fields and details. The outbox
// stores bounded alerts, so an attacker-sized detail cannot fill Redis.
func (a Alert) Bounded() Alert {
	if len(marshal(a)) <= MaxBody {
		return a
	}
	var b Alert
	if err := json.Unmarshal(a.Body(), &b); err != nil {
		a.Details, a.Truncated = map[string]any{"_omitted_keys": len(a.Details)}, true
		return a
	}
	return b
}
