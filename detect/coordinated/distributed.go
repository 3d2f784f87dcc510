package coordinated

import (
	"context"

	"github.com/vigilsec/vigil/detect"
)

// distributed counts a failure of user and raises DISTRIBUTED_BRUTE_FORCE,
// then locks the account, when its failures inside the window come from at
// least Distributed.IPs sources and number at least Distributed.Attempts.
// A per-account lockout alone would lock the account too, but would not say
// why; and a site may have none.
//
// Once per lock: the first to claim the account raises it and restarts the
// account's counts, so the next lock is earned afresh. The claim lasts the
// lock's base duration (the lock's shortest life), so failures still in
// flight when the lock is made, on any instance, raise nothing more; and a
// repeat once the lock has run out is a new finding (the responder's
// strikes double the lock). Without a lock (no Base, or monitor_only)
// the alert repeats at most once per that duration, or per window.
func (d *Detector) distributed(ctx context.Context, x *failure) {
	c, f, now, key := &d.dist, x.f, x.at, x.account
	ips, err := d.windows.Add(ctx, detect.Window{Kind: distIPs, Within: c.Within}, key, x.source, now)
	if d.storeErr("distributed sources", err) {
		return
	}
	failSum := detect.Sum{Kind: distFailures, Within: c.Within}
	fails, err := d.sums.Add(ctx, failSum, key, 1, now)
	if d.storeErr("distributed failures", err) {
		return
	}
	if ips < c.IPs || fails < int64(c.Attempts) {
		// The two counts are two operations: a concurrent failure may have
		// added its source after our source and its attempt before ours,
		// so each of us saw one count short. Reading both again after our
		// own writes lets the later of us see both complete (re-adding our
		// source counts nothing new).
		if ips, err = d.windows.Add(ctx, detect.Window{Kind: distIPs, Within: c.Within}, key, x.source, now); err != nil {
			return
		}
		if fails, err = d.sums.Sum(ctx, failSum, key, now); err != nil || ips < c.IPs || fails < int64(c.Attempts) {
			return
		}
	}
	hold := c.Lock.Base
	if hold <= 0 {
		hold = c.Within
	}
	if !d.claim(ctx, detect.Sum{Kind: distClaim, Within: hold}, key, now) {
		return
	}
	d.forget(ctx, key, distFailures, distIPs)
	details := func() detect.Details {
		return detect.Details{
			"ips": ips, "attempts": fails, "within": c.Within.String(),
			"threshold_ips": c.IPs, "threshold_attempts": c.Attempts,
		}
	}
	d.actor.Act(ctx, detect.Finding{Type: detect.DistributedBruteForce, Severity: detect.High, Time: now, Facts: f, Details: details()})
	if c.Lock.Base <= 0 {
		return
	}
	ld := details()
	ld["distributed"], ld["reason"] = true, "distributed_brute_force"
	d.actor.Act(ctx, detect.Finding{Type: detect.AccountLocked, Time: now, Facts: f, Action: detect.LockAccount,
		Target: x.user, Ban: c.Lock, Reason: "distributed_brute_force", Details: ld})
}

// forget restarts counts behind a finding; a failure only logs (the
// claim still keeps the finding from repeating).
func (d *Detector) forget(ctx context.Context, key string, sum detect.SumKind, window detect.WindowKind) {
	if err := d.sums.Forget(ctx, sum, key); err != nil {
		d.log.Warn("coordinated: restarting counts", "counter", string(sum), "error", err)
	}
	if window == "" {
		return
	}
	if err := d.windows.Forget(ctx, window, key); err != nil {
		d.log.Warn("coordinated: restarting counts", "counter", string(window), "error", err)
	}
}
