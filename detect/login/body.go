package login

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/vigilsec/vigil/detect"
)

// errBodyTooLarge refuses a login body longer than max_body: the username
// (or a second one) could hide past the part Vigil reads.
var errBodyTooLarge = errors.New("login body larger than max_body")

// readUser finds the username without consuming the body: what was read is
// put back in front of the rest, so the upstream gets the same bytes.
func readUser(r *http.Request, route *Route, maxBody int64) (string, error) {
	if route.User.From == "header" {
		return detect.CheckUsername(r.Header.Get(route.User.Name))
	}
	if r.Body == nil || r.Body == http.NoBody {
		return "", detect.ErrNoUser
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), closer: r.Body}
	if err != nil {
		return "", err
	}
	if int64(len(buf)) > maxBody {
		return "", errBodyTooLarge
	}
	ct := r.Header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ct)
	switch route.User.From {
	case "json":
		return JSONField(buf, route.User.Name)
	case "form":
		if mediaType == "multipart/form-data" {
			return MultipartField(buf, ct, route.User.Name)
		}
		if mediaType == "application/json" {
			// many apps accept JSON on their form login too
			return JSONField(buf, route.User.Name)
		}
		return FormField(buf, route.User.Name)
	}
	return "", detect.ErrNoUser
}

// refusedBody is the status for a login whose body cannot be attributed to
// one account with certainty, or 0 when it may pass.
func refusedBody(err error) int {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrAmbiguousUser):
		return http.StatusBadRequest
	}
	return 0
}

// replayBody serves the bytes already read, then the rest of the original
// body, and closes the original.
type replayBody struct {
	io.Reader
	closer io.Closer
}

func (b *replayBody) Close() error { return b.closer.Close() }
