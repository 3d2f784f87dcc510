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
// memory and Redis implementations agree exactly: a window counts the
// entries whose time t satisfies now-window < t <= now.
//
// An attempt is counted before the upstream answers (Reserve), so that
// parallel attempts, on every instance sharing the store, see each other: a
// limit of n lets no more than n failing attempts through. It then counts
// as a failure unless it is released (refused before the upstream, or no
// verdict) or the login succeeds (RecordSuccess wipes the account's
// failures).
type LoginCounter interface {
	// Reserve adds the attempt to every counter of k (a timestamped entry
	// for the account, the address and the pair; the account among the
	// address's distinct accounts) and returns the counts inside each
	// window, this attempt included.
	Reserve(ctx context.Context, k LoginKeys, w LoginWindows, now time.Time) (Attempt, LoginCounts, error)
	// Release takes a reserved attempt back out of the account, address
	// and pair counters. The account stays among the address's distinct
	// accounts: it was tried.
	Release(ctx context.Context, a Attempt) error
	// RecordSuccess settles a reserved attempt that succeeded: it leaves
	// the address's counter, and the failures of the account and of the
	// pair are forgotten (the owner has proven they know the password);
	// a hold stays.
	RecordSuccess(ctx context.Context, a Attempt) error
	// Hold empties a counter and keeps it full until until: the counter
	// behind a new lock or block restarts, and an attempt reserved before
	// every instance has seen the decision is refused as over the limit
	// (its count exceeds MaxWindowEntries). Reserve then adds nothing.
	Hold(ctx context.Context, kind CounterKind, key string, until time.Time) error
	// Forget drops one counter (an operator's unlock: a clean slate).
	Forget(ctx context.Context, kind CounterKind, key string) error
}

// Attempt is a reserved login attempt, as Release needs it.
type Attempt struct {
	Keys LoginKeys
	// Member names the attempt's entries in Redis; Seq in memory.
	Member string
	Seq    uint64
}

// MaxWindowEntries bounds how many timestamps one counter keeps. Counts
// saturate there, far above any sane threshold, so a flood cannot grow memory
// (or a Redis sorted set) without bound.
const MaxWindowEntries = 1000

// WindowKind separates the families of distinct-member windows, like
// CounterKind does for the login counters.
type WindowKind string

const (
	// ProbePaths holds, per client IP, the distinct paths that got a 4xx
	// answer: many of them in a short window is a directory scan.
	ProbePaths WindowKind = "probe"
	// UserViolations and IPViolations hold the permission violations of a
	// verified user and of an address (one unique member per violation).
	UserViolations WindowKind = "violu"
	IPViolations   WindowKind = "violip"
)

// WindowCounter counts the distinct members seen under a key inside a
// sliding window: adding a member that is already there refreshes its time
// instead of counting it twice. Keys and members are HashID output, so no
// client input reaches a store key or value. The memory and Redis
// implementations agree: a member counts while now-window < last seen <= now,
// and a key holds at most MaxWindowEntries members (the oldest go first).
type WindowCounter interface {
	// Add records member under key at now and returns how many distinct
	// members the key holds inside the window, this one included.
	Add(ctx context.Context, w Window, key, member string, now time.Time) (int, error)
	// Forget drops a key, so that after a decision the next one has to be
	// earned afresh.
	Forget(ctx context.Context, kind WindowKind, key string) error
}

// Window is a family of distinct-member windows and how far back it looks.
type Window struct {
	Kind   WindowKind
	Within time.Duration
}

// SumKind separates the families of sum windows.
type SumKind string

// Sum is a family of sum windows and how far back it looks.
type Sum struct {
	Kind   SumKind
	Within time.Duration
}

// SumWindow sums values (bytes, rows, requests) added under a key inside a
// sliding window. Keys are HashID output. The memory and Redis
// implementations agree: a value counts while now-window < its time <= now.
// A key keeps at most MaxSumBuckets time buckets, so its memory is bounded
// whatever the rate of additions; the window's resolution is then
// window/MaxSumBuckets at worst.
type SumWindow interface {
	// Add adds v (>= 0) under key at now and returns the sum inside the
	// window, v included.
	Add(ctx context.Context, s Sum, key string, v int64, now time.Time) (int64, error)
	// Sum returns the sum inside the window without adding anything.
	Sum(ctx context.Context, s Sum, key string, now time.Time) (int64, error)
	// Forget drops a key.
	Forget(ctx context.Context, kind SumKind, key string) error
}

// MaxSumBuckets bounds the time buckets of one sum window.
const MaxSumBuckets = 64

// ProfileKind separates the families of profiles (baselines, places …).
type ProfileKind string

// Profiles keeps one small opaque record per subject (a user's learned
// baseline, their recent places): the detector owns the encoding, the store
// only keeps bytes, atomically updated, with a time to live refreshed on
// every update. Keys are HashID output; a record is at most MaxProfileBytes.
type Profiles interface {
	// Get returns the record, or nil when there is none.
	Get(ctx context.Context, kind ProfileKind, key string) ([]byte, error)
	// Update replaces the record with fn(current) atomically: when another
	// instance changed it meanwhile, fn runs again on the new value. fn
	// returning nil deletes the record. It returns what was stored.
	Update(ctx context.Context, kind ProfileKind, key string, ttl time.Duration, fn func(cur []byte) []byte) ([]byte, error)
}

// MaxProfileBytes bounds one profile record.
const MaxProfileBytes = 16 << 10
