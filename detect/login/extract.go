package login

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"

	"github.com/vigilsec/vigil/detect"
)

// The username extractors read one named field out of a login body without
// decoding any other field, so the password is never copied out of the
// request bytes into a string, map or structure.

// ErrAmbiguousUser means the body names the username more than once (a
// repeated form field, JSON keys that differ only in case…). Servers
// disagree on which copy wins, so such a body is refused rather than
// attributed to one account while the app logs in another.
var ErrAmbiguousUser = errors.New("username field given more than once")

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
		return "", detect.ErrNoUser
	}
	val, err := url.QueryUnescape(string(raw))
	if err != nil {
		return "", errors.New("malformed form encoding in username field")
	}
	return detect.CheckUsername(val)
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
		value, err = io.ReadAll(io.LimitReader(p, detect.MaxUsernameBytes+1))
		if err != nil {
			return "", errors.New("malformed multipart body")
		}
		found = true
	}
	if !found {
		return "", detect.ErrNoUser
	}
	return detect.CheckUsername(string(value))
}
