package probes

import "strings"

// staticExts are assets: a page that links a missing image or an old
// stylesheet produces their 404s, so they weigh little in the scan bucket
// (assetWeight) but still count, or a scanner could hide behind ".css".
var staticExts = map[string]bool{
	"css": true, "js": true, "mjs": true, "map": true, "png": true, "jpg": true, "jpeg": true,
	"gif": true, "webp": true, "avif": true, "svg": true, "ico": true, "bmp": true,
	"woff": true, "woff2": true, "ttf": true, "otf": true, "eot": true,
	"mp4": true, "webm": true, "mp3": true, "ogg": true, "wav": true, "webmanifest": true,
}

// staticNames are files browsers and crawlers ask for on their own, missing
// on most sites: their 404s are no evidence at all.
var staticNames = map[string]bool{
	"robots.txt": true, "sitemap.xml": true, "humans.txt": true, "ads.txt": true,
	"security.txt": true, "browserconfig.xml": true, "manifest.json": true, "crossdomain.xml": true,
	"favicon.ico": true, "site.webmanifest": true,
}

// Scan-bucket weights of a 4xx answer: a missing asset is a quarter of a
// missing page, so a visit with a few broken images stays far below any
// threshold, while a scan of ".css"-suffixed names still fills the bucket
// (four times slower).
const (
	pageWeight  = 1
	assetWeight = 0.25
)

// StaticAsset reports whether a 4xx for path is ordinary noise (a missing
// image, font or stylesheet, a crawler's robots.txt, a browser's
// /.well-known/ or apple-touch-icon request) rather than a sign of probing.
func StaticAsset(path string) bool { return scanWeight(path) < pageWeight }

// scanWeight is what a 4xx for path weighs in the scan bucket: 0 for what
// browsers and crawlers ask for on their own (robots.txt, favicon.ico,
// apple-touch-icon*, /.well-known/), assetWeight for static assets,
// pageWeight for anything else.
func scanWeight(path string) float64 {
	if len(path) > 12 && strings.EqualFold(path[:13], "/.well-known/") {
		return 0
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	if len(name) == 0 || len(name) > maxSegment {
		return pageWeight
	}
	var buf [maxSegment]byte
	low := lowerInto(buf[:], name)
	if staticNames[string(low)] || hasPrefixBytes(low, "apple-touch-icon") {
		return 0
	}
	if i := lastIndexByte(low, '.'); i >= 0 && staticExts[string(low[i+1:])] {
		return assetWeight
	}
	return pageWeight
}

// pathShape is the path as the scan bucket tells paths apart: lower case,
// with segments that are identifiers (all digits, or long hex such as a
// UUID or a hash) replaced by "#". An API client whose /api/items/17,
// /api/items/18 … are gone makes one member, not twelve: scanners vary
// words, not record numbers. It runs off the request path.
func pathShape(path string) string {
	var b strings.Builder
	b.Grow(len(path))
	for i, seg := range strings.Split(strings.ToLower(path), "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if identifier(seg) {
			b.WriteByte('#')
		} else {
			b.WriteString(seg)
		}
	}
	return b.String()
}

// identifier reports whether a lower-case segment is a record identifier:
// digits only, or at least 8 hex digits and dashes with a digit among them.
func identifier(seg string) bool {
	if seg == "" {
		return false
	}
	digits, hex := 0, true
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case '0' <= c && c <= '9':
			digits++
		case 'a' <= c && c <= 'f', c == '-':
		default:
			hex = false
		}
	}
	return digits == len(seg) || (hex && digits > 0 && len(seg) >= 8)
}
