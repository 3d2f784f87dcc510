// Package coordinated detects login attacks that no single per-address or
// per-account counter sees, because the attacker spreads them out:
//
//   - a password spray (PASSWORD_SPRAY): a few passwords tried against many
//     accounts of one site, from several sources, each account tried only a
//     few times so that no lockout ever trips;
//   - a distributed brute force (DISTRIBUTED_BRUTE_FORCE): one account tried
//     from many sources, so that no block_ip ever trips; the account is
//     locked;
//   - a network-wide attack (block_network): failures from many addresses of
//     one /24 (IPv4) or /48 (IPv6), each under block_ip, blocked as a range.
//
// The login detector hands every failed login to Failure, off the request
// path. Counts live in the shared store (Redis with several instances), so
// three gateways behind one load balancer see one spray.
//
// # Dedupe across instances
//
// Every finding is claimed before it is raised: the first SumWindow.Add to a
// claim key inside its window returns 1, atomically on the shared store, so
// one instance (one goroutine) raises it and the others stay quiet. What can
// still double: while Redis is unreachable the fallback stores count and
// claim per instance, so each instance may raise its own (and each sees only
// its own share of the attack); clocks skewed by more than a claim window's
// bucket (window/64) can make two instances both claim first. Locks and
// blocks themselves are deduplicated once more by the decision store (a
// decision already in force is not imposed or recorded again).
package coordinated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Spray is `spray <ips> ips <accounts> accounts within <dur>`.
type Spray struct {
	IPs      int // distinct failing sources (detect.ClientNet) of the site…
	Accounts int // …and distinct failing accounts…
	Within   time.Duration
	// PerAccount bounds the mean failures per account (0: DefaultPerAccount):
	// above it the failures are a few accounts hammered, not a spray.
	PerAccount int
	// Tighten is the lockout threshold while a spray is on (0: leave it).
	Tighten int
}

// DefaultPerAccount is the mean failures per account a spray stays at or
// under: spray tools try one password per account per round and space the
// rounds out to stay under lockouts, so a window holds one or two tries per
// account; three leaves room for a second round and for real users' typos.
const DefaultPerAccount = 3

// Distributed is `distributed <ips> ips <attempts> attempts within <dur>`.
type Distributed struct {
	IPs, Attempts int
	Within        time.Duration
	// Lock is the lock imposed (the site's lockout Base and Max); a zero
	// Base raises the alert only.
	Lock detect.Ban
}

// NetworkBan is `block_network <n> within <dur> for <dur> [max <dur>]`:
// failures per /24 (IPv4, IPv4-mapped IPv6 included) or /48 (IPv6).
type NetworkBan struct {
	detect.Ban
}

// Options configure a Detector. A nil Spray, Distributed or Network is off.
type Options struct {
	Spray       *Spray
	Distributed *Distributed
	Network     *NetworkBan
	Windows     detect.WindowCounter // distinct sources and accounts
	Sums        detect.SumWindow     // failures, and the claims that dedupe findings
	Actor       detect.Actor
	Logger      *slog.Logger // nil: discard
}

// Detector correlates failed logins across sources, accounts and networks.
// It is safe for concurrent use.
type Detector struct {
	spray   Spray
	dist    Distributed
	network detect.Ban
	on      struct{ spray, dist, network bool }
	windows detect.WindowCounter
	sums    detect.SumWindow
	actor   detect.Actor
	log     *slog.Logger
	tight   tightened
}

// The store families this package counts in. They are part of the Redis
// key names ("<prefix>w:<kind>:<hash>", "<prefix>s:<kind>:<hash>").
const (
	sprayIPs      detect.WindowKind = "sprayip"   // per site: distinct sources
	sprayAccounts detect.WindowKind = "sprayacct" // per site: distinct accounts
	distIPs       detect.WindowKind = "distip"    // per account: distinct sources

	sprayFailures detect.SumKind = "sprayfail" // per site: named-account failures
	sprayClaim    detect.SumKind = "sprayon"   // per site: the episode's claim
	distFailures  detect.SumKind = "distfail"  // per account
	distClaim     detect.SumKind = "distlock"  // per account: the lock's claim
	netFailures   detect.SumKind = "netfail"   // per /24 or /48
	netClaim      detect.SumKind = "netblock"  // per /24 or /48: the block's claim
)

// New checks the options and returns a detector.
func New(o Options) (*Detector, error) {
	d := &Detector{windows: o.Windows, sums: o.Sums, actor: o.Actor, log: o.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if s := o.Spray; s != nil {
		errs = append(errs, checkSpray(*s))
		d.spray, d.on.spray = *s, true
		if d.spray.PerAccount == 0 {
			d.spray.PerAccount = DefaultPerAccount
		}
	}
	if c := o.Distributed; c != nil {
		errs = append(errs, checkDistributed(*c))
		d.dist, d.on.dist = *c, true
		// a self-consistent ban: the responder's strike memory reads Max
		d.dist.Lock.Failures, d.dist.Lock.Within = c.Attempts, c.Within
	}
	if n := o.Network; n != nil {
		if !n.Enabled() || n.Max < 0 {
			errs = append(errs, errors.New("block_network: needs failures, within and for above zero"))
		}
		d.network, d.on.network = n.Ban, true
	}
	if d.on.spray || d.on.dist || d.on.network {
		if o.Sums == nil || o.Actor == nil || (o.Windows == nil && (d.on.spray || d.on.dist)) {
			errs = append(errs, errors.New("coordinated: a store (windows, sums) and an actor are required"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

func checkSpray(s Spray) error {
	if !countable(s.IPs) || !countable(s.Accounts) || s.Within <= 0 || s.PerAccount < 0 || s.Tighten < 0 {
		return fmt.Errorf("spray: ips and accounts must be 1 to %d, within above zero", detect.MaxWindowEntries)
	}
	return nil
}

func checkDistributed(c Distributed) error {
	if !countable(c.IPs) || c.Attempts < 1 || c.Within <= 0 || c.Lock.Base < 0 || c.Lock.Max < 0 {
		return fmt.Errorf("distributed: ips must be 1 to %d, attempts at least 1, within above zero", detect.MaxWindowEntries)
	}
	return nil
}

// countable: a distinct-member window saturates at detect.MaxWindowEntries,
// so a higher threshold would never be reached.
func countable(n int) bool { return n >= 1 && n <= detect.MaxWindowEntries }

// Failure records one failed login of account user ("" when the request's
// account could not be read: it then counts for the spray's sources and the
// network only, since it names no account) from f.IP at now, and raises
// what the counts mean. It makes a few store round trips: call it off the
// request path. A failure without a known address correlates nothing.
func (d *Detector) Failure(ctx context.Context, f detect.Facts, user string, now time.Time) {
	if d == nil || !f.IP.IsValid() {
		return
	}
	// findings are about the attempt, never about a session the request
	// carried: none of them may end that session
	f.Session, f.SessionKey = "", ""
	if f.Net == "" {
		f.Net = detect.ClientNet(f.IP)
	}
	x := failure{f: f, user: user, source: f.NetKey(), at: now}
	if user != "" {
		x.account = detect.AccountKey(user)
	}
	if d.on.dist && user != "" {
		d.distributed(ctx, &x)
	}
	if d.on.spray {
		d.sprayFailure(ctx, &x)
	}
	if d.on.network {
		d.networkFailure(ctx, &x)
	}
}

// failure is one failed login with its store keys, hashed once.
type failure struct {
	f       detect.Facts
	user    string
	account string // detect.AccountKey(user); "" when unreadable
	source  string // the hashed ClientNet
	at      time.Time
}

// claim reports whether the caller is the first to claim key inside
// within: the store adds atomically, so exactly one caller, on one
// instance, sees 1. A store error loses the claim (no finding), rather than
// letting every failure of an outage raise one.
func (d *Detector) claim(ctx context.Context, s detect.Sum, key string, now time.Time) bool {
	n, err := d.sums.Add(ctx, s, key, 1, now)
	if err != nil {
		d.log.Warn("coordinated: claiming a finding", "kind", string(s.Kind), "error", err)
		return false
	}
	return n == 1
}

// storeErr logs a failed count; the detection is skipped for this failure.
func (d *Detector) storeErr(what string, err error) bool {
	if err != nil {
		d.log.Warn("coordinated: counting failures", "counter", what, "error", err)
		return true
	}
	return false
}

// tightened remembers, per site, until when a spray is on. It is local to
// the instance: each instance learns of the spray from the shared counts on
// the next failure it records.
type tightened struct {
	n     atomic.Int32 // entries held: the common case (never a spray) takes no lock
	mu    sync.RWMutex
	until map[string]time.Time
}

// maxTightSites bounds the sites remembered. Site names are configured,
// but a site without a name is its Host header: an attacker spraying under
// many Host names ages the soonest-ending entries out, never grows memory.
const maxTightSites = 1024

// siteKey keeps long names (a Host header) out of the map in full.
func siteKey(site string) string {
	if len(site) > 128 {
		return detect.HashID("site", site)
	}
	return site
}
