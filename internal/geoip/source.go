package geoip

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigilsec/vigil/detect"
)

// role is what a file is for: where (City or Country) or who (ASN).
type role int

const (
	roleCity role = iota
	roleASN
)

func (r role) String() string {
	if r == roleASN {
		return "an ASN (GeoLite2-ASN, GeoIP2-ISP)"
	}
	return "a City or Country (GeoLite2-City, GeoIP2-City, GeoLite2-Country, GeoIP2-Country, DBIP-City-Lite)"
}

// Database describes a loaded file, for logs and the admin API.
type Database struct {
	Path   string    `json:"path"`
	Type   string    `json:"type"`  // e.g. GeoLite2-City
	Built  time.Time `json:"built"` // when the vendor built it: how fresh the data is
	Loaded time.Time `json:"loaded"`
	Size   int64     `json:"size"`
}

// db is one loaded file. It never changes after load: a reload builds a
// new db and swaps the pointer, and the old one is garbage once the last
// lookup that loaded it returns.
type db struct {
	reader   *maxminddb.Reader
	file     os.FileInfo // the file as read, to notice a change on disk
	ipv4Only bool
	info     Database
}

// source is one configured path and the db currently loaded from it.
type source struct {
	path string
	role role
	cur  atomic.Pointer[db]

	// The file a reload last refused, and why, so that a broken file is
	// read once rather than at every poll. Guarded by Locator.mu.
	failed    os.FileInfo
	failedErr error
}

// maxSize bounds what is read into memory: the largest MaxMind database
// (GeoIP2 Enterprise) is well under it, so a bigger file is a mistake.
const maxSize = 4 << 30

// load reads, opens and validates the file at path for role. The whole
// file is read into memory (see the package documentation for why not
// mmap), checked, and only then returned, so a half-written, truncated or
// wrong file is never used.
func load(path string, role role) (*db, error) {
	wrap := func(err error) error { return fmt.Errorf("loading geoip database %s: %w", path, err) }
	f, err := os.Open(path)
	if err != nil {
		return nil, wrap(pathless(err))
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, wrap(pathless(err))
	}
	switch {
	case !before.Mode().IsRegular():
		return nil, wrap(errors.New("not a regular file"))
	case before.Size() == 0:
		return nil, wrap(errors.New("the file is empty"))
	case before.Size() > maxSize:
		return nil, wrap(fmt.Errorf("the file is %d bytes, more than any GeoIP database", before.Size()))
	}
	buf := make([]byte, before.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, wrap(fmt.Errorf("reading: %w (is it being written?)", err))
	}
	after, err := f.Stat()
	if err != nil {
		return nil, wrap(pathless(err))
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		// Written in place rather than renamed over: what was read may be
		// torn. The next reload reads it again.
		return nil, wrap(errors.New("the file changed while it was read; replace it by renaming a complete file over it"))
	}
	d, err := parse(buf, role)
	if err != nil {
		return nil, wrap(err)
	}
	d.file = before
	d.info.Path = path
	d.info.Size = before.Size()
	return d, nil
}

// parse opens and validates the database in buf for role.
func parse(buf []byte, role role) (*db, error) {
	reader, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("not a valid MaxMind DB file (truncated or corrupt?): %w", err)
	}
	md := reader.Metadata
	if err := checkType(buf, role); err != nil {
		return nil, fmt.Errorf("database type %q: %w", md.DatabaseType, err)
	}
	if md.IPVersion != 4 && md.IPVersion != 6 {
		return nil, fmt.Errorf("unsupported IP version %d in the metadata", md.IPVersion)
	}
	d := &db{
		reader:   reader,
		ipv4Only: md.IPVersion == 4,
		info: Database{
			Type:   md.DatabaseType,
			Built:  md.BuildTime().UTC(),
			Loaded: time.Now().UTC(),
		},
	}
	if err := d.selfTest(role); err != nil {
		return nil, err
	}
	return d, nil
}

// checkType asks geoip2-golang, which tracks the type names of MaxMind's
// and compatible vendors' databases, whether the file supports the lookup
// its role needs: an ASN file given as the City database, or an Anonymous
// IP or Domain database, is refused.
func checkType(buf []byte, role role) error {
	g, err := geoip2.OpenBytes(buf)
	if err != nil {
		var unknown geoip2.UnknownDatabaseTypeError
		if errors.As(err, &unknown) {
			return fmt.Errorf("not %s database", role)
		}
		return err
	}
	probe := netip.MustParseAddr("192.0.2.1")
	if role == roleASN {
		_, err = g.ASN(probe)
	} else {
		_, err = g.City(probe)
	}
	var wrong geoip2.InvalidMethodError
	if errors.As(err, &wrong) {
		return fmt.Errorf("not %s database", role)
	}
	return nil // a decoding error is selfTest's to report
}

// selfTestNetworks is how many networks selfTest decodes: enough to touch
// the start of the tree and of the data section, few enough to be instant
// for a 100 MB file.
const selfTestNetworks = 256

// selfTest decodes the first networks of the file and a few well-known
// addresses the way Locate will, so a file whose data section is corrupt
// is refused at load instead of failing lookups one by one.
func (d *db) selfTest(role role) error {
	var p detect.Place
	n := 0
	for res := range d.reader.Networks() {
		if err := res.Err(); err != nil {
			return fmt.Errorf("corrupt search tree: %w", err)
		}
		if err := d.fill(role, res.Prefix().Addr(), &p); err != nil {
			return fmt.Errorf("corrupt record for %s: %w", res.Prefix(), err)
		}
		if n++; n == selfTestNetworks {
			break
		}
	}
	for _, s := range []string{"1.1.1.1", "8.8.8.8", "2001:4860:4860::8888", "2a00:1450:4001::1"} {
		if err := d.fill(role, netip.MustParseAddr(s), &p); err != nil {
			return fmt.Errorf("corrupt record for %s: %w", s, err)
		}
	}
	return nil
}

// fill adds what d knows about ip to p.
func (d *db) fill(role role, ip netip.Addr, p *detect.Place) error {
	if d.ipv4Only && ip.Is6() {
		return nil // an IPv4 database knows nothing about IPv6
	}
	if role == roleASN {
		return fillASN(d.reader, ip, p)
	}
	return fillCity(d.reader, ip, p)
}

// reload loads the file again if it changed on disk since it was loaded.
// On failure the loaded db stays. The caller holds Locator.mu.
func (s *source) reload() (bool, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		err = fmt.Errorf("reloading geoip database %s: %w; keeping the loaded one", s.path, pathless(err))
		s.failed, s.failedErr = nil, err
		return false, err
	}
	if cur := s.cur.Load(); cur != nil && sameFile(cur.file, fi) {
		s.failed, s.failedErr = nil, nil
		return false, nil
	}
	if s.failed != nil && sameFile(s.failed, fi) {
		return false, s.failedErr // refused already: not read again
	}
	d, err := load(s.path, s.role)
	if err != nil {
		err = fmt.Errorf("%w; keeping the loaded one", err)
		s.failed, s.failedErr = fi, err
		return false, err
	}
	s.failed, s.failedErr = nil, nil
	s.cur.Store(d)
	return true, nil
}

// sameFile reports whether a and b are the same version of a file: the
// same inode (a rename over the path makes a new one), size and mtime.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// pathless drops the path from an *fs.PathError: the message that wraps it
// names the file already.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
