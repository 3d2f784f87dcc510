package detect

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The username extractors read one named field out of a login body without
// decoding any other field, so the password is never copied out of the
// request bytes into a string, map or structure.

// ErrNoUser means the body did not carry the username field.
var ErrNoUser = errors.New("username field not found")

// ErrAmbiguousUser means the body names the username more than once (a
// repeated form field, JSON keys that differ only in case…). Servers
// disagree on which copy wins, so such a body is refused rather than
// attributed to one account while the app logs in another.
var ErrAmbiguousUser = errors.New("username field given more than once")

// MaxUsernameBytes bounds a username taken from a request; longer ones are
// refused as malformed input (the attempt still counts against the IP).
const MaxUsernameBytes = 1024

// FormField returns the first value of field in an
// application/x-www-form-urlencoded body.
func FormField(body []byte, field string) (string, error) {
	var raw []byte
	found := false
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte("&"))
		k, v, _ := bytes.Cut(pair, []byte("="))
		if !formKeyEquals(k, field) {
			continue
		}
		if found {
			return "", ErrAmbiguousUser
		}
		raw, found = v, true
	}
	if !found {
		return "", ErrNoUser
	}
	val, err := url.QueryUnescape(string(raw))
	if err != nil {
		return "", errors.New("malformed form encoding in username field")
	}
	return checkUser(val)
}

// formKeyEquals compares an encoded form key with a field name without
// allocating for the common, unescaped case.
func formKeyEquals(encoded []byte, field string) bool {
	if !bytes.ContainsAny(encoded, "%+") {
		return string(encoded) == field
	}
	k, err := url.QueryUnescape(string(encoded))
	return err == nil && k == field
}

// MultipartField returns the value of the form part named field in a
// multipart/form-data body; contentType carries the boundary. Parts other
// than the username are skipped unread.
func MultipartField(body []byte, contentType, field string) (string, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return "", errors.New("multipart body without a valid boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var value []byte
	found := false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", errors.New("malformed multipart body")
		}
		if p.FormName() != field {
			continue
		}
		if found {
			return "", ErrAmbiguousUser
		}
		value, err = io.ReadAll(io.LimitReader(p, MaxUsernameBytes+1))
		if err != nil {
			return "", errors.New("malformed multipart body")
		}
		found = true
	}
	if !found {
		return "", ErrNoUser
	}
	return checkUser(string(value))
}

// HeaderField returns a username carried in a request header.
func HeaderField(value string) (string, error) {
	if value == "" {
		return "", ErrNoUser
	}
	return checkUser(value)
}

func checkUser(u string) (string, error) {
	switch {
	case u == "":
		return "", ErrNoUser
	case len(u) > MaxUsernameBytes:
		return "", errors.New("username longer than 1024 bytes")
	case !utf8.ValidString(u):
		return "", errors.New("username is not valid UTF-8")
	}
	return u, nil
}

// DisplayUser shortens a username for logs and events: at most 256 bytes
// of valid UTF-8, with control characters left to the JSON encoder to escape.
func DisplayUser(u string) string {
	const limit = 256
	if len(u) <= limit {
		return u
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(u[cut]) {
		cut--
	}
	return strings.ToValidUTF8(u[:cut], "") + "…"
}
