package login

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/decode"
)

// Why a login cannot be attributed to one account. Each is refused (unless
// the route says `unreadable forward`) and counted against the address:
// the app might read an account there, a locked one included, that Vigil
// cannot.
var (
	errBodyTooLarge = errors.New("login body larger than max_body")
	errEncoding     = errors.New("login body in a Content-Encoding Vigil does not decode")
	errDisagree     = errors.New("the query and the body name different accounts")
)

// unreadableStatus is the answer to a login whose account cannot be read
// with certainty, or 0 when the attempt may pass (no account named, which
// counts against the address only).
func unreadableStatus(err error) int {
	switch {
	case err == nil, errors.Is(err, detect.ErrNoUser):
		return 0
	case errors.Is(err, errBodyTooLarge), errors.Is(err, decode.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errEncoding), errors.Is(err, errCharset):
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

// credentials is what a login request names: the account, and whether the
// request carried a body or a query naming one at all (a login page loaded
// with GET names none and is not an attempt).
type credentials struct {
	user    string
	err     error
	attempt bool
}

// readCredentials finds the account a login names wherever the app could
// read it: the body (decoded from its Content-Encoding and character set)
// and the query string. When both name one, they must agree. The body is
// never consumed: the bytes read are put back in front of the rest, so the
// upstream gets exactly what the client sent.
func readCredentials(r *http.Request, route *Route, maxBody int64) credentials {
	if route.User.From == "header" {
		u, err := detect.CheckUsername(r.Header.Get(route.User.Name))
		return credentials{user: u, err: err, attempt: err == nil || r.ContentLength != 0}
	}
	qUser, qErr := queryUser(r, route)
	body, bErr := readBody(r, maxBody)
	c := credentials{attempt: len(body) > 0 || qErr != detect.ErrNoUser || bErr != nil}
	var bUser string
	if bErr == nil && len(body) > 0 {
		bUser, bErr = bodyUser(body, r.Header.Get("Content-Type"), route)
	} else if bErr == nil {
		bErr = detect.ErrNoUser
	}
	switch {
	case bErr != nil && !errors.Is(bErr, detect.ErrNoUser):
		c.err = bErr
	case qErr != nil && !errors.Is(qErr, detect.ErrNoUser):
		c.err = qErr
	case bErr == nil && qErr == nil && detect.NormalizeUser(bUser) != detect.NormalizeUser(qUser):
		c.err = errDisagree
	case bErr == nil:
		c.user = bUser
	case qErr == nil:
		c.user = qUser
	default:
		c.err = detect.ErrNoUser
	}
	return c
}

// queryUser reads the username field from the query string, as Go's
// FormValue, Rails params, Servlet getParameter and Flask request.values do
// whatever the method.
func queryUser(r *http.Request, route *Route) (string, error) {
	if r.URL.RawQuery == "" {
		return "", detect.ErrNoUser
	}
	return FormField([]byte(r.URL.RawQuery), route.User.Name)
}

// readBody reads up to maxBody bytes of the body and decodes its
// Content-Encoding; the raw bytes are replayed to the upstream.
func readBody(r *http.Request, maxBody int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(raw), r.Body), closer: r.Body}
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading login body: %w", err)
	case int64(len(raw)) > maxBody:
		return nil, errBodyTooLarge
	}
	enc := r.Header.Get("Content-Encoding")
	if enc == "" || len(raw) == 0 {
		return raw, nil
	}
	if !decode.Supported(enc) {
		return nil, fmt.Errorf("%w: %q", errEncoding, enc)
	}
	return decode.Body(enc, bytes.NewReader(raw), maxBody, maxBody)
}

// bodyUser extracts the username from a decoded body by its media type.
func bodyUser(body []byte, contentType string, route *Route) (string, error) {
	mediaType, params, _ := mime.ParseMediaType(contentType)
	isJSON := mediaType == "application/json" || strings.HasSuffix(mediaType, "+json") ||
		(route.User.From == "json" && mediaType == "")
	if mediaType != "multipart/form-data" {
		var err error
		if body, err = toUTF8(body, params["charset"], isJSON); err != nil {
			return "", err
		}
	}
	switch {
	case route.User.From == "json" || isJSON:
		// many apps accept JSON on their form login too; a document that
		// is not valid JSON as a whole is refused, not half-read
		if !json.Valid(body) {
			return "", errMalformedJSON
		}
		return JSONField(body, route.User.Name)
	case mediaType == "multipart/form-data":
		return MultipartField(body, contentType, route.User.Name)
	}
	return FormField(body, route.User.Name)
}

// replayBody serves the bytes already read, then the rest of the original
// body, and closes the original.
type replayBody struct {
	io.Reader
	closer io.Closer
}

func (b *replayBody) Close() error { return b.closer.Close() }
