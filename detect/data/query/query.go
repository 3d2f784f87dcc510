// Package query spots unusual ways of asking a data API, the signs of
// someone pulling more than a person would: walking ids one by one
// (/api/users/1, /2, /3 … : enumeration), asking for huge pages
// (?limit=100000: page_size) or paging far beyond what a screen shows
// (?offset=1000000: deep_pagination), and a sudden spread of different
// query shapes (query_shapes). Each is reported as a Finding for the
// caller to turn into a DATA_ACCESS_ANOMALY.
//
// Match and Query are cheap and allocation-free, for the request path;
// Enumerate and Shape touch the store and belong on the background pool.
// Paths and queries are read the way lenient apps read them (percent
// decoding, path cleaning, case variants, repeated parameters), so the
// tricks that slip past a literal comparison count like the plain request.
package query

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Distinct counts distinct members per key in a sliding window,
// approximately (HyperLogLog), so that counting the ids a subject touched
// costs kilobytes whatever their number. Implementations live in
// internal/store (memory, Redis, fallback). Keys and members are
// detect.HashID output; kind is a short constant name ([a-z0-9_]).
type Distinct interface {
	// Add adds member under key at now and returns the estimated distinct
	// members within the window, this one included.
	Add(ctx context.Context, s Span, key, member string, now time.Time) (int64, error)
	// Forget drops a key, so that after a decision the next finding has to
	// be earned afresh.
	Forget(ctx context.Context, kind, key string) error
}

// Span is a family of distinct counts (Kind, part of the store's key
// names) and how far back it counts.
type Span struct {
	Kind   string
	Within time.Duration
}

// Enumeration is one `enumeration <pattern> <n> within <dur>` directive.
type Enumeration struct {
	// Pattern is a path with exactly one {name} segment, the id, e.g.
	// /api/users/{id}; other segments are literals (compared without
	// regard to ASCII case) or globs where * matches within one segment.
	Pattern string
	// Limit is the distinct ids within Within at which a subject is
	// reported.
	Limit  int
	Within time.Duration
}

// PageSize is the `page_size <n> [params …]` subdirective.
type PageSize struct {
	Max int // page sizes above it are unusual
	// Params are the page-size parameter names (default DefaultPageParams).
	// Names compare without case, '_', '-' or a leading '$', so per_page
	// also catches perPage and per-page.
	Params []string
	// MaxPage is the deepest page (page=…) that is usual; offset and skip
	// count rows, so theirs is MaxPage × Max. 0: 1000.
	MaxPage int
}

// DefaultPageParams are the page-size parameters of the common API
// frameworks (Rails, Django REST, Laravel, Spring, JSON:API's page[size],
// OData's $top).
var DefaultPageParams = []string{"limit", "per_page", "page_size", "pagesize", "size", "count", "top"}

// DefaultMaxPage is PageSize.MaxPage's default.
const DefaultMaxPage = 1000

// Options configure a Detector. Enumerations need Distinct; Shapes needs
// Distinct and Profiles.
type Options struct {
	Enumerations []Enumeration
	PageSize     *PageSize
	Shapes       *Shapes
	Distinct     Distinct
	Profiles     detect.Profiles
}

// Finding is what a check concluded: Kind is "enumeration", "page_size",
// "deep_pagination" or "query_shapes"; Details are the evidence, with
// "kind" among them.
type Finding struct {
	Kind    string
	Details detect.Details
}

// Detector holds the compiled patterns and parameter names. It is safe for
// concurrent use.
type Detector struct {
	opt      Options
	enums    []pattern
	sizes    []string // normalised page-size names
	sizeOrig []string // as configured, for the details
	maxPage  int64
	maxRows  int64

	mu       sync.Mutex
	reported map[string]int64     // (enum or shapes, subject) key -> reported until, Unix µs
	bases    map[string]shapeBase // shape baselines last seen, by key
}

// New compiles o; it refuses a malformed pattern or limit.
func New(o Options) (*Detector, error) {
	d := &Detector{opt: o, reported: map[string]int64{}, bases: map[string]shapeBase{}}
	for i, e := range o.Enumerations {
		p, err := compile(e.Pattern)
		if err != nil {
			return nil, fmt.Errorf("enumeration %d: %w", i+1, err)
		}
		if e.Limit <= 0 || e.Within < time.Millisecond {
			return nil, fmt.Errorf("enumeration %q: limit and window must be positive", e.Pattern)
		}
		d.enums = append(d.enums, p)
	}
	if len(o.Enumerations) > 0 && o.Distinct == nil {
		return nil, errors.New("enumeration: a distinct counter is required")
	}
	if ps := o.PageSize; ps != nil {
		if err := d.pageSize(ps); err != nil {
			return nil, err
		}
	}
	if o.Shapes != nil && (o.Distinct == nil || o.Profiles == nil) {
		return nil, errors.New("query shapes: a distinct counter and profiles are required")
	}
	return d, nil
}

// pageSize compiles the page_size subdirective.
func (d *Detector) pageSize(ps *PageSize) error {
	if ps.Max <= 0 || ps.MaxPage < 0 {
		return errors.New("page_size: the size must be positive")
	}
	params := ps.Params
	if len(params) == 0 {
		params = DefaultPageParams
	}
	for _, p := range params {
		var buf [maxName]byte
		n, ok := normName(&buf, p)
		if !ok || n == 0 {
			return fmt.Errorf("page_size: bad parameter name %q", p)
		}
		d.sizes = append(d.sizes, string(buf[:n]))
		d.sizeOrig = append(d.sizeOrig, p)
	}
	d.maxPage = int64(ps.MaxPage)
	if d.maxPage == 0 {
		d.maxPage = DefaultMaxPage
	}
	d.maxRows = d.maxPage * int64(ps.Max)
	return nil
}

// Enumerations reports how many patterns Match knows, so a caller can skip
// it when there are none.
func (d *Detector) Enumerations() int { return len(d.enums) }
