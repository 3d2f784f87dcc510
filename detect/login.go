package detect

import "time"

// Ban is a threshold that, once reached inside a window, bans for a while.
// Repeat offenders get Base doubled per earlier ban, up to Max.
type Ban struct {
	Failures int
	Within   time.Duration
	Base     time.Duration
	Max      time.Duration
}

// Enabled reports whether the ban is configured.
func (b Ban) Enabled() bool { return b.Failures > 0 && b.Within > 0 && b.Base > 0 }

// LoginPolicy holds the login thresholds of one site. A zero field disables
// that detector.
type LoginPolicy struct {
	Lockout          Ban           // per account
	BlockIP          Ban           // per IP
	StuffingAccounts int           // distinct accounts from one IP…
	StuffingWithin   time.Duration // …inside this window
}

// Windows tells the counter how far back each counter must look.
func (p LoginPolicy) Windows() LoginWindows {
	w := LoginWindows{Account: p.Lockout.Within, IP: p.BlockIP.Within, Stuffing: p.StuffingWithin}
	w.Pair = max(w.Account, w.IP)
	if w.IP == 0 && w.Stuffing > 0 {
		// stuffing blocks an IP, so IP failures are still worth counting
		w.IP = w.Stuffing
	}
	return w
}

// Action is what a finding asks the responder to do.
type Action int

const (
	NoAction Action = iota
	LockAccount
	BlockAddress
)

// Finding is a detector's conclusion about one attempt: an event to record
// and, possibly, an enforcement to impose.
type Finding struct {
	Type     Type
	Severity Severity
	Action   Action
	Ban      Ban // for LockAccount and BlockAddress
	Details  map[string]any
}

// AssessFailure decides what one failed login means, given the counts just
// recorded. The order matters to the caller only for presentation: a lock,
// then a block.
func (p LoginPolicy) AssessFailure(c LoginCounts) []Finding {
	var out []Finding
	counts := map[string]any{
		"account_failures": c.Account, "ip_failures": c.IP,
		"pair_failures": c.Pair, "accounts_from_ip": c.AccountsFromIP,
	}
	if p.Lockout.Enabled() && c.Account >= p.Lockout.Failures {
		d := map[string]any{"threshold": p.Lockout.Failures, "window": p.Lockout.Within.String()}
		mergeInto(d, counts)
		if c.Pair < c.Account {
			// failures for one account from several addresses: a distributed
			// brute force rather than one confused user
			d["distributed"] = true
		}
		out = append(out, Finding{Type: AccountLocked, Severity: Medium, Action: LockAccount, Ban: p.Lockout, Details: d})
	}
	stuffing := p.StuffingAccounts > 0 && p.StuffingWithin > 0 && c.AccountsFromIP >= p.StuffingAccounts
	if stuffing {
		d := map[string]any{"threshold": p.StuffingAccounts, "window": p.StuffingWithin.String()}
		mergeInto(d, counts)
		out = append(out, Finding{Type: CredentialStuffing, Severity: High, Details: d})
	}
	switch {
	case p.BlockIP.Enabled() && c.IP >= p.BlockIP.Failures:
		d := map[string]any{"threshold": p.BlockIP.Failures, "window": p.BlockIP.Within.String(), "reason": "failed_logins"}
		mergeInto(d, counts)
		out = append(out, Finding{Type: IPBlocked, Severity: Medium, Action: BlockAddress, Ban: p.BlockIP, Details: d})
	case stuffing:
		ban := p.BlockIP
		if !ban.Enabled() {
			ban = Ban{Failures: p.StuffingAccounts, Within: p.StuffingWithin, Base: DefaultStuffingBan, Max: 24 * time.Hour}
		}
		d := map[string]any{"reason": "credential_stuffing"}
		mergeInto(d, counts)
		out = append(out, Finding{Type: IPBlocked, Severity: Medium, Action: BlockAddress, Ban: ban, Details: d})
	}
	return out
}

// DefaultStuffingBan is how long a credential-stuffing IP is blocked when the
// site has no block_ip policy of its own.
const DefaultStuffingBan = time.Hour

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		dst[k] = v
	}
}
