package probes

import (
	"bytes"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

// signatures are probe payloads, as they read after normalisation (percent
// decoding, lower case, "\" as "/", whitespace and /**/ comments collapsed
// to one space). Each names its family: path traversal, SQL injection,
// cross-site scripting, or another injection. It is a short list of what
// scanners send and applications never need, not an attempt at a WAF.
//
// Each entry is chosen so that ordinary text rarely carries it: two levels
// of "../" in a query (one is a relative link), SQL sleep only after
// "and"/"or" or an opening parenthesis, event handlers only as an attribute
// after a space (a query parameter named onload is fine: path and query are
// joined by "?"), javascript: only as a call. Rarely is not never (a search
// for "union select" carries one), which is why a hit is evidence poured
// into a bucket, not a ban.
//
// In the path itself any "../" (or "..;/", which Java servers read as one)
// is traversal: browsers resolve dot segments, "%2e%2e" included, before
// they send a URL, so only tools send them, and "/static../" is the nginx
// alias traversal.
var signatures = []struct{ sig, name string }{
	{"../../", "traversal"}, {"/etc/passwd", "traversal"}, {"/etc/shadow", "traversal"},
	{"/proc/self/", "traversal"}, {"win.ini", "traversal"}, {"boot.ini", "traversal"},
	{"c:/windows/", "traversal"}, {"\x00", "null_byte"},
	{"union select", "sqli"}, {"union all select", "sqli"}, {"' or '1'='1", "sqli"},
	{"' or 1=1", "sqli"}, {"\" or \"1\"=\"1", "sqli"}, {" or 1=1--", "sqli"}, {"'--", "sqli"},
	{"' or ''='", "sqli"}, {"and sleep(", "sqli"}, {"or sleep(", "sqli"}, {"benchmark(", "sqli"},
	{"pg_sleep(", "sqli"}, {"waitfor delay", "sqli"}, {"information_schema", "sqli"},
	{"xp_cmdshell", "sqli"}, {"load_file(", "sqli"}, {"into outfile", "sqli"}, {"@@version", "sqli"},
	{"extractvalue(", "sqli"}, {"updatexml(", "sqli"}, {"(sleep(", "sqli"}, {"dbms_pipe.", "sqli"},
	{"||chr(", "sqli"}, {"concat(0x", "sqli"}, {"xmltype(", "sqli"}, {",null,null", "sqli"},
	{"order by 1--", "sqli"},
	{"<script", "xss"}, {"</script", "xss"}, {"javascript:alert(", "xss"}, {"javascript:prompt(", "xss"},
	{"javascript:confirm(", "xss"}, {"javascript:eval(", "xss"}, {"javascript://", "xss"},
	{" onerror=", "xss"}, {" onload=", "xss"}, {"<iframe", "xss"}, {"<svg", "xss"},
	{"${jndi:", "jndi"}, {"<?php", "php"}, {"php://", "php"}, {"() { :;", "shellshock"},
	{"/bin/sh", "command"}, {"/bin/bash", "command"}, {"cmd.exe", "command"}, {"file:///", "file_url"},
}

// signatureSets holds the bytes of each signature (see scannerAgentSets).
var signatureSets, signatureBytes = func() ([]byteSet, [][]byte) {
	sets, bs := make([]byteSet, len(signatures)), make([][]byte, len(signatures))
	for i, s := range signatures {
		sets[i], bs[i] = byteSetOf(s.sig), []byte(s.sig)
	}
	return sets, bs
}()

var dotDotSlash, dotDotSemi = []byte("../"), []byte("..;/")

// pathTriggers are the bytes without which a path cannot carry any
// signature except "../" (checked on its own): most paths have none of
// them and cost one scan.
const pathTriggers = "%'\"<>();$\\`{@\x00"

// pathTriggerSet is pathTriggers as a byte set, built once: strings.ContainsAny
// would build it on every request.
var pathTriggerSet = byteSetOf(pathTriggers)

// maxNormalized bounds the bytes of path and query examined.
const maxNormalized = 2048

// ProbeSignature reports whether the path or the raw query of a request
// carries a probe payload, and its family.
func ProbeSignature(path, rawQuery string) (string, bool) {
	if rawQuery == "" && !pathTriggerSet.any(path) && !strings.Contains(path, "..") {
		return "", false
	}
	var buf [maxNormalized]byte
	n := normalizeProbe(buf[:], path, false, 0)
	if p := buf[:n]; bytes.Contains(p, dotDotSlash) || bytes.Contains(p, dotDotSemi) {
		return "traversal", true
	}
	if rawQuery != "" && n < len(buf) {
		buf[n] = '?'
		n = normalizeProbe(buf[:], rawQuery, true, n+1)
	}
	b := buf[:n]
	present := byteSetOfBytes(b)
	for i, s := range signatures {
		if present.hasAll(&signatureSets[i]) && containsBytes(b, signatureBytes[i]) {
			return s.name, true
		}
	}
	return "", false
}

// normalizeProbe writes s into buf from n on: percent escapes decoded (twice,
// for double encoding), "+" as a space in a query, lower case, "\" as "/",
// runs of whitespace and /**/ comments as one space. It returns the new end.
func normalizeProbe(buf []byte, s string, query bool, n int) int {
	for i := 0; i < len(s) && n < len(buf); i++ {
		c := s[i]
		if c == '%' {
			if d, w := decodePercent(s, i); w > 0 {
				c, i = d, i+w-1
			}
		}
		switch {
		case c == '+' && query:
			c = ' '
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '\\':
			c = '/'
		case c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			c = ' '
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if end := strings.Index(s[i+2:], "*/"); end >= 0 {
				i += end + 3
				c = ' '
			}
		}
		if c == ' ' && n > 0 && buf[n-1] == ' ' {
			continue
		}
		buf[n] = c
		n++
	}
	return n
}

// decodePercent decodes "%XX" at s[i], and once more when the result is
// itself the start of an escape ("%252e" is "%2e" is "."); w is how many
// bytes of s it consumed, 0 when s[i:] is not an escape.
func decodePercent(s string, i int) (byte, int) {
	c, ok := hexPair(s, i+1)
	if !ok {
		return 0, 0
	}
	if c == '%' {
		if c2, ok := hexPair(s, i+3); ok {
			return c2, 5
		}
	}
	return c, 3
}

// hexPair decodes the two hex digits at s[i:i+2].
func hexPair(s string, i int) (byte, bool) {
	if i+1 >= len(s) {
		return 0, false
	}
	hi, ok1 := detect.HexValue(s[i])
	lo, ok2 := detect.HexValue(s[i+1])
	return hi<<4 | lo, ok1 && ok2
}
