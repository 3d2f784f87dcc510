package coordinated

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// sprayFailure counts a failure site-wide and raises PASSWORD_SPRAY when
// the site's failures come from at least Spray.IPs sources and cover at
// least Spray.Accounts accounts, at no more than Spray.PerAccount failures
// per account on average (more is one or two accounts hammered: the
// distributed detector's and the lockout's business, not a spray). One
// source over many accounts is credential stuffing, which the login
// policy's per-address counter sees.
//
// A spray is judged on a failure that names an account: an unreadable one
// adds its source but cannot read the account count (a window has no
// read-only call), so the next named failure decides.
//
// The finding is raised once per episode: every failure that finds the
// spray on adds to the site's claim, so the claim only reads 1 again after
// a whole window without the spray. Each such failure also keeps the
// site's lockout tightened on this instance for one more window.
func (d *Detector) sprayFailure(ctx context.Context, x *failure) {
	s, f, now := &d.spray, &x.f, x.at
	key := detect.HashID("site", f.Site)
	ips, err := d.windows.Add(ctx, detect.Window{Kind: sprayIPs, Within: s.Within}, key, x.source, now)
	if d.storeErr("spray sources", err) || x.account == "" {
		return
	}
	accounts, err := d.windows.Add(ctx, detect.Window{Kind: sprayAccounts, Within: s.Within}, key, x.account, now)
	if d.storeErr("spray accounts", err) {
		return
	}
	failSum := detect.Sum{Kind: sprayFailures, Within: s.Within}
	attempts, err := d.sums.Add(ctx, failSum, key, 1, now)
	if d.storeErr("spray failures", err) {
		return
	}
	if !s.spraying(ips, accounts, attempts) {
		// three counts, three operations: read them again after our own
		// writes, so the later of two concurrent failures sees them all
		// (re-adding our source and account counts nothing new)
		if ips, accounts, attempts, err = d.sprayCounts(ctx, x, key); err != nil || !s.spraying(ips, accounts, attempts) {
			return
		}
	}
	d.tight.mark(f.Site, now, now.Add(s.Within))
	if !d.claim(ctx, detect.Sum{Kind: sprayClaim, Within: s.Within}, key, now) {
		return
	}
	d.actor.Act(ctx, detect.Finding{Type: detect.PasswordSpray, Severity: detect.High, Time: now, Facts: *f,
		Details: detect.Details{
			"ips": ips, "accounts": accounts, "attempts": attempts, "within": s.Within.String(),
			"threshold_ips": s.IPs, "threshold_accounts": s.Accounts,
		}})
}

// sprayCounts reads the site's spray counts again without adding to them.
func (d *Detector) sprayCounts(ctx context.Context, x *failure, key string) (ips, accounts int, attempts int64, err error) {
	s, now := &d.spray, x.at
	if ips, err = d.windows.Add(ctx, detect.Window{Kind: sprayIPs, Within: s.Within}, key, x.source, now); err != nil {
		return
	}
	if accounts, err = d.windows.Add(ctx, detect.Window{Kind: sprayAccounts, Within: s.Within}, key, x.account, now); err != nil {
		return
	}
	attempts, err = d.sums.Sum(ctx, detect.Sum{Kind: sprayFailures, Within: s.Within}, key, now)
	return
}

// spraying is the spray rule. The distinct counts saturate at
// detect.MaxWindowEntries while the failures do not, so a window that holds
// that many accounts is a spray whatever its mean.
func (s *Spray) spraying(ips, accounts int, attempts int64) bool {
	if ips < s.IPs || accounts < s.Accounts {
		return false
	}
	return accounts >= detect.MaxWindowEntries || attempts <= int64(s.PerAccount)*int64(accounts)
}

// Tightened reports whether a spray is on at site, as this instance last
// saw it: true from the failure that found it until one window after the
// last failure that still found it. No store round trip: the login check
// may call it on the request path.
func (d *Detector) Tightened(site string, now time.Time) bool {
	if d == nil || d.tight.n.Load() == 0 {
		return false
	}
	return d.tight.on(site, now)
}

// Lockout is the account lockout threshold in force at site: failures, or
// Spray.Tighten while a spray is on when that is lower (and not 0).
func (d *Detector) Lockout(site string, now time.Time, failures int) int {
	if t := d.tightenTo(); t > 0 && t < failures && d.Tightened(site, now) {
		return t
	}
	return failures
}

func (d *Detector) tightenTo() int {
	if d == nil || !d.on.spray {
		return 0
	}
	return d.spray.Tighten
}

func (t *tightened) on(site string, now time.Time) bool {
	t.mu.RLock()
	until, ok := t.until[siteKey(site)]
	t.mu.RUnlock()
	return ok && now.Before(until)
}

// mark keeps the site tightened until until. At the bound, the sprays
// that have ended go first, else the one ending soonest.
func (t *tightened) mark(site string, now, until time.Time) {
	k := siteKey(site)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.until == nil {
		t.until = make(map[string]time.Time)
	}
	if cur, ok := t.until[k]; ok {
		if until.After(cur) {
			t.until[k] = until
		}
		return
	}
	if len(t.until) >= maxTightSites {
		t.evict(now)
	}
	t.until[k] = until
	t.n.Store(int32(len(t.until)))
}

func (t *tightened) evict(now time.Time) {
	soonest, first := "", time.Time{}
	for k, u := range t.until {
		if !u.After(now) {
			delete(t.until, k)
		} else if first.IsZero() || u.Before(first) {
			soonest, first = k, u
		}
	}
	if len(t.until) >= maxTightSites {
		delete(t.until, soonest)
	}
}
