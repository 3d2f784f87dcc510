// Package geoip implements detect.Locator on MaxMind DB files: a City or
// Country database (GeoLite2, GeoIP2, or DB-IP's compatible City Lite) and
// an optional ASN database (GeoLite2-ASN, GeoIP2-ISP).
//
// # Reloading
//
// geoipupdate and the usual cron jobs write a new file beside the old one
// and rename it over the path, so a stat of the path sees the old file or
// the new one, never half of one. Reload stats each path and, when the file
// changed (inode, size or mtime), reads the new file whole, validates it
// (metadata, database type, a decode of its first networks) and only then
// swaps an atomic pointer; lookups in flight finish on the old database. A
// file that fails keeps the old database in service.
//
// # Memory, not mmap
//
// A file is read into the heap rather than memory-mapped. Unmapping a
// database while another goroutine is inside a lookup faults the process,
// and knowing when the last lookup on the old mapping has returned needs
// reference counting on the hot path. A heap copy is simply dropped: the
// garbage collector frees it once no lookup holds it. The cost is resident
// memory of about the files' size (GeoLite2-City ≈ 60 MB, ASN ≈ 10 MB),
// twice that for the moment of a reload. Decoded strings are copies, so a
// Place kept in a profile does not pin an old database.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vigilsec/vigil/detect"
)

// Locator answers where an address is from the loaded databases. It is safe
// for concurrent use; Locate never blocks on a reload.
type Locator struct {
	city *source
	asn  *source // nil without an ASN database

	mu     sync.Mutex // serialises Reload and Close
	closed atomic.Bool

	lookupErrors atomic.Uint64
}

var _ detect.Locator = (*Locator)(nil)

// Open loads the City or Country database at cityPath and, unless asnPath
// is empty, the ASN database at asnPath. A missing, unreadable, truncated
// or wrong-type file is an error that names it.
func Open(cityPath, asnPath string) (*Locator, error) {
	if cityPath == "" {
		return nil, errors.New("geoip: a City or Country database is required")
	}
	l := &Locator{city: &source{path: cityPath, role: roleCity}}
	if asnPath != "" {
		l.asn = &source{path: asnPath, role: roleASN}
	}
	for _, s := range l.sources() {
		d, err := load(s.path, s.role)
		if err != nil {
			return nil, err
		}
		s.cur.Store(d)
	}
	return l, nil
}

// Locate returns what the databases know about ip: the zero Place for an
// address without a location (detect.Locatable), one they do not know, and
// on a nil or closed Locator; a partial Place when a database lacks fields.
// A record that fails to decode is counted (LookupErrors) and left out.
func (l *Locator) Locate(ip netip.Addr) detect.Place {
	var p detect.Place
	if l == nil {
		return p
	}
	ip, ok := detect.Locatable(ip)
	if !ok {
		return p
	}
	// Each db is loaded once, so every field from one file comes from one
	// version of it, however a reload interleaves.
	if d := l.city.cur.Load(); d != nil {
		if err := d.fill(roleCity, ip, &p); err != nil {
			l.lookupErrors.Add(1)
		}
	}
	if l.asn != nil {
		if d := l.asn.cur.Load(); d != nil {
			if err := d.fill(roleASN, ip, &p); err != nil {
				l.lookupErrors.Add(1)
			}
		}
	}
	return p
}

// LookupErrors is how many records failed to decode since Open: non-zero
// means a corrupt database that passed the load checks (a metric).
func (l *Locator) LookupErrors() uint64 { return l.lookupErrors.Load() }

// Reload loads each file again if it changed on disk since it was loaded
// and reports whether any database was replaced. A file that is missing or
// fails validation keeps the loaded database, and its error is returned
// (and returned again, without reading the file, until the file changes).
func (l *Locator) Reload() (changed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return false, errors.New("geoip: reload of a closed locator")
	}
	var errs []error
	for _, s := range l.sources() {
		c, err := s.reload()
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
		}
	}
	return changed, errors.Join(errs...)
}

// Databases describes the loaded files, City first.
func (l *Locator) Databases() []Database {
	var out []Database
	for _, s := range l.sources() {
		if d := s.cur.Load(); d != nil {
			out = append(out, d.info)
		}
	}
	return out
}

// Close releases the databases. Lookups already running finish normally;
// later ones find nothing. There is no file or mapping to release, so Close
// never fails; it returns an error to fit io.Closer.
func (l *Locator) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed.Store(true)
	for _, s := range l.sources() {
		s.cur.Store(nil)
	}
	return nil
}

// String names the loaded databases, for a start-up log line.
func (l *Locator) String() string {
	s := "geoip:"
	for _, d := range l.Databases() {
		s += fmt.Sprintf(" %s (%s, built %s)", d.Path, d.Type, d.Built.Format("2006-01-02"))
	}
	return s
}

func (l *Locator) sources() []*source {
	if l.asn == nil {
		return []*source{l.city}
	}
	return []*source{l.city, l.asn}
}
