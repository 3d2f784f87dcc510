package login

import (
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Policy holds the login thresholds of one site. A zero field disables that
// detector.
type Policy struct {
	Lockout          detect.Ban    // per account
	BlockIP          detect.Ban    // per IP (IPv6: per /64)
	StuffingAccounts int           // distinct accounts from one IP…
	StuffingWithin   time.Duration // …inside this window
}

// Windows tells the counter how far back each counter must look.
func (p Policy) Windows() detect.LoginWindows {
	w := detect.LoginWindows{Account: p.Lockout.Within, IP: p.BlockIP.Within, Stuffing: p.StuffingWithin}
	w.Pair = max(w.Account, w.IP)
	if w.IP == 0 && w.Stuffing > 0 {
		// stuffing blocks an IP, so IP failures are still worth counting
		w.IP = w.Stuffing
	}
	return w
}

// DefaultStuffingBan is how long a credential-stuffing IP is blocked when the
// site has no block_ip policy of its own.
const DefaultStuffingBan = time.Hour

// AssessFailure decides what one failed login means, given the counts just
// recorded: a lock, then a block (the order events are recorded in). The
// findings carry no target or facts yet: the caller knows them.
func (p Policy) AssessFailure(c detect.LoginCounts) []detect.Finding {
	var out []detect.Finding
	if p.Lockout.Enabled() && c.Account >= p.Lockout.Failures {
		d := p.countDetails(c)
		d["threshold"], d["window"] = p.Lockout.Failures, p.Lockout.Within.String()
		if c.Pair < c.Account {
			// failures for one account from several addresses: a distributed
			// brute force rather than one confused user
			d["distributed"] = true
		}
		out = append(out, detect.Finding{Type: detect.AccountLocked, Action: detect.LockAccount, Ban: p.Lockout, Details: d})
	}
	stuffing := p.StuffingAccounts > 0 && p.StuffingWithin > 0 && c.AccountsFromIP >= p.StuffingAccounts
	if stuffing {
		d := p.countDetails(c)
		d["threshold"], d["window"] = p.StuffingAccounts, p.StuffingWithin.String()
		out = append(out, detect.Finding{Type: detect.CredentialStuffing, Details: d})
	}
	switch {
	case p.BlockIP.Enabled() && c.IP >= p.BlockIP.Failures:
		d := p.countDetails(c)
		d["threshold"], d["window"], d["reason"] = p.BlockIP.Failures, p.BlockIP.Within.String(), "failed_logins"
		out = append(out, detect.Finding{Type: detect.IPBlocked, Action: detect.BlockAddress, Ban: p.BlockIP, Reason: "failed_logins", Details: d})
	case stuffing:
		ban := p.BlockIP
		if !ban.Enabled() {
			ban = detect.Ban{Failures: p.StuffingAccounts, Within: p.StuffingWithin, Base: DefaultStuffingBan, Max: 24 * time.Hour}
		}
		d := p.countDetails(c)
		d["reason"] = "credential_stuffing"
		out = append(out, detect.Finding{Type: detect.IPBlocked, Action: detect.BlockAddress, Ban: ban, Reason: "credential_stuffing", Details: d})
	}
	return out
}

// countDetails are the counts a login event carries: those the site's
// policy keeps (a counter that is not configured is absent, not 0), in a
// map sized for them and the request's details (8 entries stay one group).
func (p Policy) countDetails(c detect.LoginCounts) detect.Details {
	d := make(detect.Details, 8)
	w := p.Windows()
	if w.Account > 0 {
		d["account_failures"] = c.Account
	}
	if w.IP > 0 {
		d["ip_failures"] = c.IP
	}
	if w.Pair > 0 {
		d["pair_failures"] = c.Pair
	}
	if w.Stuffing > 0 {
		d["accounts_from_ip"] = c.AccountsFromIP
	}
	return d
}
