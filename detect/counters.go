package detect

import (
	"context"
	"time"
)

// LoginKeys names the counters that one login attempt touches. Every field is
// a HashID, never the raw username or address.
type LoginKeys struct {
	Account string // failures of one account, from anywhere
	IP      string // failures from one IP, whatever the account
	Pair    string // failures of one account from one IP
	// AccountMember identifies the account inside the IP's set of distinct
	// accounts (for credential stuffing); usually equal to Account.
	AccountMember string
}

// KeysFor hashes a username and a client IP into the counters they touch.
func KeysFor(user, ip string) LoginKeys {
	acct := AccountKey(user)
	return LoginKeys{
		Account:       acct,
		IP:            HashID("ip", ip),
		Pair:          HashID("pair", NormalizeUser(user)+"\x00"+ip),
		AccountMember: acct,
	}
}

// LoginWindows says how far back each counter looks.
type LoginWindows struct {
	Account  time.Duration // lockout window
	IP       time.Duration // block_ip window
	Pair     time.Duration // per account+IP window (the longer of the two above)
	Stuffing time.Duration // distinct accounts per IP window
}

// LoginCounts are the failures inside each window, including the one just
// recorded.
type LoginCounts struct {
	Account        int `json:"account_failures"`
	IP             int `json:"ip_failures"`
	Pair           int `json:"pair_failures"`
	AccountsFromIP int `json:"accounts_from_ip"`
}

// CounterKind selects one family of login counters.
type CounterKind string

const (
	AccountCounter  CounterKind = "acct"
	IPCounter       CounterKind = "ip"
	PairCounter     CounterKind = "pair"
	IPAccountsCount CounterKind = "ipacct"
)

// LoginCounter is the store of sliding-window login failure counters. The
// memory and Redis implementations agree exactly: a window counts the events
// whose time t satisfies now-window < t <= now.
type LoginCounter interface {
	// RecordFailure adds one failed attempt to every counter of k and returns
	// the counts inside each window.
	RecordFailure(ctx context.Context, k LoginKeys, w LoginWindows, now time.Time) (LoginCounts, error)
	// RecordSuccess forgets the failures of the account and of the pair: the
	// owner has proven they know the password.
	RecordSuccess(ctx context.Context, k LoginKeys) error
	// Forget drops one counter, so that after a lock or a block the next ban
	// has to be earned afresh.
	Forget(ctx context.Context, kind CounterKind, key string) error
}

// MaxWindowEntries bounds how many timestamps one counter keeps. Counts
// saturate there, far above any sane threshold, so a flood cannot grow memory
// (or a Redis sorted set) without bound.
const MaxWindowEntries = 1000
