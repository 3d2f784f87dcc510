package query

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Shapes configures query_shapes. A request's shape is the set of its
// query parameter names: an app's own pages and clients use a handful,
// while a parameter fuzzer or an injection scanner (Arjun, sqlmap, param
// miners) tries hundreds. Each subject's distinct shapes per window are
// compared with the same count in its own earlier windows.
type Shapes struct {
	Within time.Duration // the window shapes are counted in; default 10m
	// Factor: a window with more distinct shapes than Factor × the
	// subject's usual is a jump; default 4.
	Factor float64
	// Min: fewer distinct shapes than this are never a jump; default 30.
	Min int
	// MinHistory: active windows learned before judging; default 3.
	MinHistory int
	// TTL: how long a baseline outlives its last update; default 30 days.
	TTL time.Duration
}

// shapesProfile is the detect.Profiles kind of the baselines.
const shapesProfile detect.ProfileKind = "qshape"

// shapeKind is the Distinct kind of the shape counts.
const shapeKind = "shape"

// withDefaults fills the zero fields.
func (s Shapes) withDefaults() Shapes {
	if s.Within <= 0 {
		s.Within = 10 * time.Minute
	}
	if s.Factor <= 0 {
		s.Factor = 4
	}
	if s.Min <= 0 {
		s.Min = 30
	}
	if s.MinHistory <= 0 {
		s.MinHistory = 3
	}
	if s.TTL <= 0 {
		s.TTL = 30 * 24 * time.Hour
	}
	return s
}

// Shape returns the shape of a raw query: an order-free hash of its
// distinct parameter names, normalised as Query reads them (so limit and
// LIMIT are one name). It is cheap and allocation-free, for the request
// path; 0 is the empty query.
func Shape(rawQuery string) uint64 {
	var seen [16]uint64
	n := 0
	var shape uint64
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest = nextPair(rest)
		name, _, _ := strings.Cut(pair, "=")
		var buf [maxName]byte
		l, ok := normName(&buf, name)
		h := uint64(14695981039346656037) // FNV-1a, then a finaliser
		if ok {
			for _, c := range buf[:l] {
				h = (h ^ uint64(c)) * 1099511628211
			}
		} else {
			for i := 0; i < len(name); i++ {
				h = (h ^ uint64(lower(name[i]))) * 1099511628211
			}
		}
		h = mix(h)
		dup := false
		for _, s := range seen[:n] {
			dup = dup || s == h
		}
		if dup {
			continue
		}
		if n < len(seen) {
			seen[n] = h
			n++
		}
		shape += h
	}
	return shape
}

// mix is splitmix64's finaliser: FNV's high bits alone are weak.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// shapeBase is a subject's learned baseline, as kept in its profile.
type shapeBase struct {
	window  int64   // the current window's number (time / Within)
	peak    int64   // its distinct shapes so far
	mean    float64 // the moving average of earlier active windows' peaks
	windows int64   // earlier active windows learned
}

// Shapes counts shape for subject and reports a jump in its distinct
// shapes against its baseline, once per window. The profile is written
// only when the window's count passes its peak or a new window begins, so
// a subject costs a few profile writes a window, not one a request. Call
// it off the request path.
func (d *Detector) Shapes(ctx context.Context, subject string, shape uint64, now time.Time) (Finding, bool) {
	if d.opt.Shapes == nil {
		return Finding{}, false
	}
	o := d.opt.Shapes.withDefaults()
	key := detect.HashID("qshape", subject)
	if d.quiet(key, now) {
		return Finding{}, false // reported: this window teaches nothing
	}
	n, err := d.opt.Distinct.Add(ctx, Span{Kind: shapeKind, Within: o.Within}, key, detect.HashID("shape", strconv.FormatUint(shape, 16)), now)
	if err != nil {
		return Finding{}, false
	}
	window := now.UnixNano() / int64(o.Within)
	base, ok := d.memo(key)
	if !ok || base.window != window || n > base.peak {
		if base, err = d.learn(ctx, key, o, window, n); err != nil {
			return Finding{}, false
		}
	}
	if base.windows < int64(o.MinHistory) || n < int64(o.Min) ||
		float64(n) <= o.Factor*math.Max(base.mean, 1) || !d.firstReport(key, now, o.Within) {
		return Finding{}, false
	}
	return Finding{Kind: "query_shapes", Details: detect.Details{
		"kind": "query_shapes", "distinct_shapes": n, "baseline": math.Round(base.mean*10) / 10,
		"factor": o.Factor, "window": o.Within.String(),
	}}, true
}

// memo returns the baseline this instance last read or wrote for key.
func (d *Detector) memo(key string) (shapeBase, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.bases[key]
	return b, ok
}

// learn folds count n of window into key's profile (a finished window's
// peak into the average when a new one begins) and remembers the result.
func (d *Detector) learn(ctx context.Context, key string, o Shapes, window, n int64) (shapeBase, error) {
	var base shapeBase
	_, err := d.opt.Profiles.Update(ctx, shapesProfile, key, o.TTL, func(cur []byte) []byte {
		base = decodeBase(cur)
		if base.window != window {
			if base.peak > 0 {
				// a window that was a jump teaches at most the jump's
				// threshold, so an attack does not become the norm
				peak := float64(base.peak)
				if base.windows >= int64(o.MinHistory) {
					peak = min(peak, o.Factor*math.Max(base.mean, 1))
				}
				base.windows++
				base.mean += (peak - base.mean) / float64(min(base.windows, 10))
			}
			base.window, base.peak = window, 0
		}
		if n <= base.peak && cur != nil {
			return cur // nothing new: the store keeps what it has
		}
		base.peak = max(base.peak, n)
		return encodeBase(base)
	})
	if err != nil {
		return base, err
	}
	d.mu.Lock()
	if len(d.bases) >= maxReported {
		clear(d.bases) // a flood of subjects: read the profiles again
	}
	d.bases[key] = base
	d.mu.Unlock()
	return base, nil
}

func encodeBase(b shapeBase) []byte {
	out := make([]byte, 32)
	binary.BigEndian.PutUint64(out, uint64(b.window))
	binary.BigEndian.PutUint64(out[8:], uint64(b.peak))
	binary.BigEndian.PutUint64(out[16:], math.Float64bits(b.mean))
	binary.BigEndian.PutUint64(out[24:], uint64(b.windows))
	return out
}

// decodeBase reads a baseline; anything malformed is a fresh one.
func decodeBase(p []byte) shapeBase {
	if len(p) != 32 {
		return shapeBase{}
	}
	b := shapeBase{
		window:  int64(binary.BigEndian.Uint64(p)),
		peak:    int64(binary.BigEndian.Uint64(p[8:])),
		mean:    math.Float64frombits(binary.BigEndian.Uint64(p[16:])),
		windows: int64(binary.BigEndian.Uint64(p[24:])),
	}
	if b.peak < 0 || b.windows < 0 || math.IsNaN(b.mean) || math.IsInf(b.mean, 0) || b.mean < 0 {
		return shapeBase{}
	}
	return b
}

// nextPair splits the first name=value pair off a raw query, at "&" or
// ";" (both separate pairs for the lenient frameworks an app may run on).
func nextPair(rawQuery string) (pair, rest string) {
	if i := strings.IndexAny(rawQuery, "&;"); i >= 0 {
		return rawQuery[:i], rawQuery[i+1:]
	}
	return rawQuery, ""
}
