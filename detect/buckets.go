package detect

import (
	"context"
	"time"
)

// BucketKind separates the families of leaky buckets (one per probe
// detector), like WindowKind does for windows.
type BucketKind string

// Bucket is a family of leaky buckets, as CrowdSec's scenarios use them:
// evidence is poured in, the bucket leaks one unit every Leak, and a pour
// that takes its level above Capacity overflows. A burst of more than
// Capacity units overflows it; a steady trickle of less than one unit per
// Leak never does. Capacity 0 overflows on any pour (a trigger).
type Bucket struct {
	Kind     BucketKind
	Capacity float64
	Leak     time.Duration // time to leak one unit; 0 disables the bucket
}

// Drop is one piece of evidence poured into a bucket.
type Drop struct {
	// Weight is how many units the evidence is worth (> 0): a probe of a
	// static asset is worth less than one of a page.
	Weight float64
	// Member, when set, makes the drop distinct (CrowdSec's "distinct"): a
	// drop whose member was poured within the bucket's memory, the time a
	// full bucket takes to empty ((Capacity+1)·Leak), adds nothing, so the
	// same path asked again is not more evidence. It is HashID output.
	Member string
}

// MaxBucketMembers bounds the distinct members one bucket remembers; the
// oldest go first. Beyond it a member may count twice, which only happens
// to a client already pouring more distinct evidence than any bucket holds.
const MaxBucketMembers = 32

// Buckets is the store of per-key leaky buckets. Keys and members are
// HashID output, so no client input reaches a store key or value. The
// memory and Redis implementations agree exactly: both keep, per key, the
// time the bucket will be empty, in whole microseconds, and the members'
// last times (see internal/store/buckets_memory.go for the rule).
type Buckets interface {
	// Pour adds d to the bucket of key at now and returns the level after
	// it (in units) and whether this pour overflowed the bucket. A distinct
	// drop already in the bucket adds nothing and never overflows.
	Pour(ctx context.Context, b Bucket, key string, d Drop, now time.Time) (level float64, overflow bool, err error)
	// Forget empties a bucket, so that after a decision the next one has to
	// be earned afresh.
	Forget(ctx context.Context, kind BucketKind, key string) error
}
