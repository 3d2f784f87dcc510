package login

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

// JSONField returns the string (or number) at a dotted path such as
// "user.name" in a JSON body. Values that are not on the path are skipped by
// a scanner without being decoded, so a password field is never copied.
func JSONField(body []byte, path string) (string, error) {
	s := &jsonScanner{b: body}
	for _, key := range strings.Split(path, ".") {
		if err := s.enterObjectKey(key); err != nil {
			return "", err
		}
	}
	s.space()
	start := s.i
	if err := s.skipValue(0); err != nil {
		return "", err
	}
	raw := body[start:s.i]
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", errMalformedJSON
		}
		return detect.CheckUsername(v)
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		return detect.CheckUsername(string(raw))
	}
	return "", errors.New("username field is not a string")
}

var errMalformedJSON = errors.New("malformed JSON body")

// maxJSONDepth bounds nesting so a hostile body cannot exhaust the stack.
const maxJSONDepth = 64

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// enterObjectKey expects an object at the cursor and leaves the cursor at the
// value of key. Keys match case-insensitively, as encoding/json does; an
// object where more than one key matches is refused as ambiguous, because
// parsers disagree on which one wins (first, last, exact case) and a
// gateway reading a different name than the app would let a locked account
// through.
func (s *jsonScanner) enterObjectKey(key string) error {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return detect.ErrNoUser
	}
	s.i++
	found := -1
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		return detect.ErrNoUser
	}
	for {
		k, err := s.memberKey()
		if err != nil {
			return err
		}
		if keyEquals(k, key) {
			if found >= 0 {
				return ErrAmbiguousUser
			}
			s.space()
			found = s.i
		}
		if err := s.skipValue(0); err != nil {
			return err
		}
		more, err := s.next('}')
		if err != nil {
			return err
		}
		if !more {
			if found < 0 {
				return detect.ErrNoUser
			}
			s.i = found
			return nil
		}
	}
}

// memberKey reads an object member's key and its colon, returning the raw
// key (with quotes).
func (s *jsonScanner) memberKey() ([]byte, error) {
	s.space()
	start := s.i
	if err := s.skipString(); err != nil {
		return nil, err
	}
	k := s.b[start:s.i]
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, errMalformedJSON
	}
	s.i++
	return k, nil
}

// next moves past what follows a member or an element: a comma (more
// follow) or the container's closer (it ended).
func (s *jsonScanner) next(closer byte) (more bool, err error) {
	s.space()
	if s.i >= len(s.b) {
		return false, errMalformedJSON
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, nil
	case closer:
		s.i++
		return false, nil
	}
	return false, errMalformedJSON
}

// keyEquals compares a raw JSON key (with quotes) to key, decoding escapes
// only when the raw form has any.
func keyEquals(raw []byte, key string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) >= 2 && strings.EqualFold(string(raw[1:len(raw)-1]), key)
	}
	var k string
	return json.Unmarshal(raw, &k) == nil && strings.EqualFold(k, key)
}

func (s *jsonScanner) skipString() error {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return errMalformedJSON
	}
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '\\':
			s.i++
		case c == '"':
			s.i++
			return nil
		case c < 0x20:
			return errMalformedJSON
		}
	}
	return errMalformedJSON
}

func (s *jsonScanner) skipValue(depth int) error {
	if depth > maxJSONDepth {
		return errMalformedJSON
	}
	s.space()
	if s.i >= len(s.b) {
		return errMalformedJSON
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		return s.skipContainer(c, depth)
	default:
		start := s.i
		for s.i < len(s.b) && strings.IndexByte("0123456789+-.eEtruefalsn", s.b[s.i]) >= 0 {
			s.i++
		}
		if !json.Valid(s.b[start:s.i]) {
			return errMalformedJSON
		}
		return nil
	}
}

func (s *jsonScanner) skipContainer(open byte, depth int) error {
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == closer {
		s.i++
		return nil
	}
	for {
		if open == '{' {
			if _, err := s.memberKey(); err != nil {
				return err
			}
		}
		if err := s.skipValue(depth + 1); err != nil {
			return err
		}
		more, err := s.next(closer)
		if err != nil || !more {
			return err
		}
	}
}
