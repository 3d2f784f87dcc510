package baseline

import (
	"encoding/binary"
	"errors"
	"math"
)

// The records are binary rather than JSON: Add decodes and re-encodes the
// subject's record on every answer of an export route, and a fixed layout
// keeps that to a few hundred nanoseconds and well under 300 bytes.
//
// Subject record (little endian):
//
//	u8 version | i64 window ns | u8 series count | series...
//	series: u8 name length | name | i64 open window index | i64 open total |
//	        f64 mean | f64 variance | u32 closed windows |
//	        i64 window last reported | i64 last anomaly (Unix ns)
//
// Peer record:
//
//	u8 version | i64 window ns | u8 series count | series...
//	series: u8 name length | name | f64 mean | f64 variance | u32 samples |
//	        u8 member count | u32 member tags...
const (
	recordVersion = 1
	peerVersion   = 1
	// maxMeasures bounds the series (one per measure) in one record; a
	// further measure replaces the least recently active one.
	maxMeasures = 4
	// MaxMeasureName bounds a measure's name ("bytes", "rows" …).
	MaxMeasureName = 32
	// maxMembers bounds the distinct member tags a peer record keeps: it
	// only needs to tell "enough people" from "one or two".
	maxMembers = 16
	noWindow   = math.MinInt64
)

var errCorrupt = errors.New("baseline: corrupt record")

// series is one measure's baseline of one subject on one group.
type series struct {
	name        string
	open        int64   // index of the open window (Unix ns / window)
	total       int64   // the open window's volume so far
	mean, vari  float64 // EWMA of the closed windows' totals
	windows     uint32  // closed windows folded in, zero windows included
	reported    int64   // index of the last window that raised an event
	lastAnomaly int64   // Unix ns of that event; 0: never
}

// record is a subject's baselines on one group.
type record struct {
	window int64 // ns; a record learned with another window length is dropped
	series []series
}

// find returns the series named name, or nil.
func (r *record) find(name string) *series {
	for i := range r.series {
		if r.series[i].name == name {
			return &r.series[i]
		}
	}
	return nil
}

// add returns a new series for name opened at idx, replacing the least
// recently active one when the record is full.
func (r *record) add(name string, idx int64) *series {
	s := series{name: name, open: idx, reported: noWindow}
	if len(r.series) < maxMeasures {
		r.series = append(r.series, s)
		return &r.series[len(r.series)-1]
	}
	old := 0
	for i := range r.series {
		if r.series[i].open < r.series[old].open {
			old = i
		}
	}
	r.series[old] = s
	return &r.series[old]
}

func (r *record) encode() []byte {
	n := 10
	for _, s := range r.series {
		n += 1 + len(s.name) + 52
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.window))
	b = append(b, byte(len(r.series)))
	for _, s := range r.series {
		b = append(b, byte(len(s.name)))
		b = append(b, s.name...)
		b = binary.LittleEndian.AppendUint64(b, uint64(s.open))
		b = binary.LittleEndian.AppendUint64(b, uint64(s.total))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.mean))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.vari))
		b = binary.LittleEndian.AppendUint32(b, s.windows)
		b = binary.LittleEndian.AppendUint64(b, uint64(s.reported))
		b = binary.LittleEndian.AppendUint64(b, uint64(s.lastAnomaly))
	}
	return b
}

// decodeRecord reads a subject record. Anything unexpected (another
// version, a truncated or padded record, numbers no Add could have written)
// is errCorrupt: the caller starts afresh rather than judging on garbage.
func decodeRecord(b []byte) (record, error) {
	d := decoder{b: b}
	if d.u8() != recordVersion {
		return record{}, errCorrupt
	}
	r := record{window: d.i64()}
	n := int(d.u8())
	if n > maxMeasures {
		return record{}, errCorrupt
	}
	r.series = make([]series, n)
	for i := range r.series {
		s := &r.series[i]
		s.name = d.name()
		s.open, s.total = d.i64(), d.i64()
		s.mean, s.vari = d.f64(), d.f64()
		s.windows = d.u32()
		s.reported, s.lastAnomaly = d.i64(), d.i64()
		if s.total < 0 || !finite(s.mean, s.vari) || s.mean < 0 || s.vari < 0 {
			d.bad = true
		}
	}
	if d.bad || len(d.b) != 0 || r.window <= 0 {
		return record{}, errCorrupt
	}
	return r, nil
}

// peerSeries is one measure's aggregate of a peer group's closed windows.
type peerSeries struct {
	name       string
	mean, vari float64
	samples    uint32
	members    []uint32 // distinct member tags, at most maxMembers
}

// peerRecord is a peer group's aggregates on one route group.
type peerRecord struct {
	window int64
	series []peerSeries
}

func (r *peerRecord) find(name string) *peerSeries {
	for i := range r.series {
		if r.series[i].name == name {
			return &r.series[i]
		}
	}
	return nil
}

func (r *peerRecord) encode() []byte {
	b := make([]byte, 0, 10+len(r.series)*(22+MaxMeasureName+4*maxMembers))
	b = append(b, peerVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.window))
	b = append(b, byte(len(r.series)))
	for _, s := range r.series {
		b = append(b, byte(len(s.name)))
		b = append(b, s.name...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.mean))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.vari))
		b = binary.LittleEndian.AppendUint32(b, s.samples)
		b = append(b, byte(len(s.members)))
		for _, m := range s.members {
			b = binary.LittleEndian.AppendUint32(b, m)
		}
	}
	return b
}

// decodePeers reads a peer record; errCorrupt as decodeRecord.
func decodePeers(b []byte) (peerRecord, error) {
	d := decoder{b: b}
	if d.u8() != peerVersion {
		return peerRecord{}, errCorrupt
	}
	r := peerRecord{window: d.i64()}
	n := int(d.u8())
	if n > maxMeasures {
		return peerRecord{}, errCorrupt
	}
	r.series = make([]peerSeries, n)
	for i := range r.series {
		s := &r.series[i]
		s.name = d.name()
		s.mean, s.vari = d.f64(), d.f64()
		s.samples = d.u32()
		m := int(d.u8())
		if m > maxMembers {
			return peerRecord{}, errCorrupt
		}
		s.members = make([]uint32, m)
		for j := range s.members {
			s.members[j] = d.u32()
		}
		if !finite(s.mean, s.vari) || s.mean < 0 || s.vari < 0 {
			d.bad = true
		}
	}
	if d.bad || len(d.b) != 0 || r.window <= 0 {
		return peerRecord{}, errCorrupt
	}
	return r, nil
}

// decoder reads fixed-width fields and remembers running short, so the
// decoders check once at the end instead of after every field.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u8() byte     { return d.take(1)[0] }
func (d *decoder) u32() uint32  { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *decoder) i64() int64   { return int64(binary.LittleEndian.Uint64(d.take(8))) }
func (d *decoder) f64() float64 { return math.Float64frombits(binary.LittleEndian.Uint64(d.take(8))) }

func (d *decoder) name() string {
	n := int(d.u8())
	if n == 0 || n > MaxMeasureName {
		d.bad = true
		return ""
	}
	return string(d.take(n))
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
