package login

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// errCharset refuses a body in a character set Vigil does not decode: the
// app might read a username in it that Vigil cannot.
var errCharset = errors.New("login body in an unsupported character set")

// toUTF8 returns body as UTF-8, the way lenient parsers read it: a byte
// order mark wins (Python's json.loads and most form parsers honour it and
// strip it), then the charset parameter, then, for JSON, the encoding its
// first bytes imply (RFC 4627's detection, which json.loads also does).
// UTF-8 bodies come back as they are, without copying.
func toUTF8(body []byte, charset string, isJSON bool) ([]byte, error) {
	if enc, n := bomEncoding(body); enc != nil {
		return decodeAll(enc, body[n:])
	} else if n > 0 {
		return body[n:], nil // UTF-8 BOM
	}
	switch cs := strings.ToLower(strings.TrimSpace(charset)); cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
	case "utf-16", "utf-16le", "utf-16be", "utf-32", "utf-32le", "utf-32be":
		return decodeAll(namedEncoding(cs), body)
	default:
		if !isJSON {
			return nil, fmt.Errorf("%w: %q", errCharset, charset)
		}
	}
	if isJSON {
		if enc := jsonEncoding(body); enc != nil {
			return decodeAll(enc, body)
		}
	}
	return body, nil
}

// bomEncoding reads a byte order mark: the encoding it announces (nil for
// UTF-8) and its length (0: no mark).
func bomEncoding(b []byte) (encoding.Encoding, int) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return nil, 3
	case bytes.HasPrefix(b, []byte{0x00, 0x00, 0xFE, 0xFF}):
		return utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM), 4
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0x00, 0x00}):
		return utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM), 4
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), 2
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), 2
	}
	return nil, 0
}

// namedEncoding is a charset parameter's encoding; "utf-16" without an
// order is big-endian unless a mark says otherwise (RFC 2781).
func namedEncoding(cs string) encoding.Encoding {
	switch cs {
	case "utf-16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	case "utf-16", "utf-16be":
		return unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM)
	case "utf-32le":
		return utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM)
	}
	return utf32.UTF32(utf32.BigEndian, utf32.ExpectBOM)
}

// jsonEncoding detects a JSON text's encoding from the pattern of zero
// bytes in its first four (JSON starts with ASCII), as RFC 4627 section 3
// and Python's json.loads do; nil for UTF-8.
func jsonEncoding(b []byte) encoding.Encoding {
	if len(b) < 4 {
		if len(b) >= 2 && b[0] == 0 {
			return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
		}
		if len(b) >= 2 && b[1] == 0 {
			return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
		}
		return nil
	}
	switch {
	case b[0] == 0 && b[1] == 0 && b[2] == 0:
		return utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM)
	case b[1] == 0 && b[2] == 0 && b[3] == 0:
		return utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM)
	case b[0] == 0:
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
	case b[1] == 0:
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	}
	return nil
}

// decodeAll transcodes a whole body; input that is not valid in the
// encoding is refused rather than guessed at.
func decodeAll(enc encoding.Encoding, b []byte) ([]byte, error) {
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil || !utf8.Valid(out) || bytes.ContainsRune(out, utf8.RuneError) {
		return nil, fmt.Errorf("%w: body is not valid in its declared encoding", errCharset)
	}
	return out, nil
}
