package risk

import (
	"context"
	"time"
)

// Store keeps the model's frequency tables: one profile per user (a table
// per feature, the hour-of-week histogram among them) and one global table
// per feature. Counts decay exponentially with Tables.HalfLife, and every
// table keeps at most its K values. The memory and Redis implementations
// (internal/store) agree: the same learning gives the same counts.
type Store interface {
	// Read returns what scoring q needs: the user's and the global counts
	// of q's values, and the user's counts at q.Near. A user with no
	// profile reads as zero counts. With Redis it is one round trip.
	Read(ctx context.Context, q *Query) (Counts, error)
	// Learn adds q, a successful login, to the user's profile, and to the
	// global tables unless the user already added to them within
	// Tables.GlobalEvery. With Redis it is one round trip.
	Learn(ctx context.Context, q *Query) error
}

// Query is one login as a store sees it: the key of each feature's value
// (a 64-bit hash; the hour's bin for Hour), never the value itself.
type Query struct {
	// User is the profile's key, a detect.HashID.
	User string
	Keys [NumFeatures]uint64
	// Has tells which features the login has (no GeoIP: no country, no
	// ASN). A missing one is neither read nor learned.
	Has [NumFeatures]bool
	// Near are keys whose user counts smooth those of Keys: the hour's
	// neighbours and the browser's earlier versions (see NearFeature).
	// They are read with their feature.
	Near   [NumNear]uint64
	Now    time.Time
	Tables *Tables
}

// Tables say how a store keeps its counts. Every instance sharing a store
// must use the same.
type Tables struct {
	// HalfLife is how long a count takes to fade to half its weight.
	HalfLife time.Duration
	// UserK and GlobalK bound the values each table keeps. A new value in
	// a full user table replaces the one with the lowest decayed count; in
	// a full global table, the lowest of a random sample of GlobalSample
	// (the approximate eviction Redis itself uses for LFU).
	UserK   [NumFeatures]int
	GlobalK [NumFeatures]int
	// UserTTL forgets a profile that has learned nothing for this long.
	UserTTL time.Duration
	// GlobalEvery is the least time between two contributions of one user
	// to the global tables: see docs/risk.md, "Skewing the global table".
	GlobalEvery time.Duration
}

// GlobalSample is how many entries a full global table samples to choose
// the one a new value replaces.
const GlobalSample = 8

// Tally is one value's count in one table.
type Tally struct {
	Count float64 // the value's decayed count
	Total float64 // the decayed count of everything the table learned
	// New is the decayed count of the logins that brought the table a
	// value it did not hold: Witten–Bell's number of distinct values,
	// decayed like the rest, so that values the user stopped using fade
	// from it too. (Not filled for the global tables.)
	New float64
}

// Counts is what a store returns for one query. Counts are decayed to
// q.Now.
type Counts struct {
	// Logins is how many successful logins the user's profile has
	// learned, not decayed: the "learned" threshold counts these.
	Logins int64
	User   [NumFeatures]Tally
	Global [NumFeatures]Tally
	// IPNew is the decayed count of the logins that brought the user a new
	// address inside the login's network (ASN): how often this user's
	// address changes there (a mobile carrier: nearly always; home
	// broadband: when the lease ends).
	IPNew float64
	// Near are the user's counts at q.Near.
	Near [NumNear]float64
}

// Counts are kept by forward decay (Cormode, Shkapenyuk, Srivastava and
// Xu, ICDE 2009): a login at t adds the weight 2^((t-epoch)/HalfLife), and
// a count read at now is the sum of its weights times 2^(-(now-epoch)/
// HalfLife). So learning only adds (HINCRBYFLOAT in Redis: no read, no
// rewrite of the other counts), and every count of a table decays by the
// same factor at read time.
//
// A user's epoch is the time of their first login, moved forward (every
// weight scaled down) once a weight would pass 2^UserRebase. The global
// tables' epoch is that of their generation: a generation lasts
// GlobalGenerationHalfLives half-lives (42 years at 30 days), after which
// the global tables start afresh under new keys, since rescaling a table of
// many thousand entries in place would stall Redis.
const (
	UserRebase                = 64
	GlobalGenerationHalfLives = 512
)

// globalOrigin is the start of generation 0.
var globalOrigin = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// GlobalGeneration returns the generation of the global tables at now and
// its epoch.
func GlobalGeneration(now time.Time, halfLife time.Duration) (gen int64, epoch time.Time) {
	span := time.Duration(GlobalGenerationHalfLives) * halfLife
	d := now.Sub(globalOrigin)
	gen = int64(d / span)
	if d < 0 && d%span != 0 {
		gen-- // floor, not truncation, before the origin
	}
	return gen, globalOrigin.Add(time.Duration(gen) * span)
}
