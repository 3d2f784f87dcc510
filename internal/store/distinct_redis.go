package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect/data/query"
)

// RedisDistinct is the distinct counter (query.Distinct) shared by every
// instance: per key, a ring of distinctSlots HyperLogLogs
// ("<prefix>d:<kind>:{<hash>}:<slot>") and a small hash of the bucket each
// slot holds ("…:{<hash>}:m"), all under the key's hash tag so that the one
// script of an Add (PFADD into the current bucket, PFCOUNT over the live
// ones, which counts their union) stays in one Cluster slot. Every key
// expires one window plus one bucket after its last write.
type RedisDistinct struct {
	ks Keyspace
}

// NewRedisDistinct returns a distinct counter in ks.
func NewRedisDistinct(ks Keyspace) *RedisDistinct {
	return &RedisDistinct{ks: ks}
}

// distinctAddScript empties the current slot when it holds an older bucket,
// adds the member, refreshes the TTLs and returns the union's count. A slot
// holding a newer bucket (a clock a whole ring behind) is left alone.
// KEYS: the slots, then the meta hash. ARGV: slot (1-based), bucket start,
// oldest start counted, member, ttl ms.
var distinctAddScript = redis.NewScript(`
local slots = #KEYS - 1
local meta, s = KEYS[#KEYS], tonumber(ARGV[1])
local start, oldest = tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HGET', meta, s)
local have = h and tonumber(h)
if not have or have < start then
  redis.call('DEL', KEYS[s])
  redis.call('HSET', meta, s, ARGV[2])
  have = start
end
if have == start then
  redis.call('PFADD', KEYS[s], ARGV[4])
  redis.call('PEXPIRE', KEYS[s], ARGV[5])
  redis.call('PEXPIRE', meta, ARGV[5])
end
local fields = {}
for i = 1, slots do fields[i] = i end
local starts = redis.call('HMGET', meta, unpack(fields))
local live = {}
for i = 1, slots do
  local b = starts[i] and tonumber(starts[i])
  if b and b >= oldest and b <= start then live[#live + 1] = KEYS[i] end
end
if #live == 0 then return 0 end
return redis.call('PFCOUNT', unpack(live))
`)

// Add implements query.Distinct. key and member must be detect.HashID
// output, kind a short name of letters, digits and '_': none of them may
// come from a client.
func (r *RedisDistinct) Add(ctx context.Context, sp query.Span, key, member string, now time.Time) (int64, error) {
	kind := sp.Kind
	s, ok := distinctSpanOf(sp.Within, now)
	if !ok {
		return 0, nil
	}
	if err := checkDistinct(kind, key, member); err != nil {
		return 0, err
	}
	ttl := (s.ttl() + time.Millisecond - 1) / time.Millisecond
	n, err := distinctAddScript.Run(ctx, r.ks.Client, r.keys(kind, key),
		s.slot+1, strconv.FormatInt(s.start, 10), strconv.FormatInt(s.oldest, 10), member, int64(ttl)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis distinct: %w", err)
	}
	return n, nil
}

// Forget implements query.Distinct: the ring's names are fixed, so one DEL
// (one slot) removes them all.
func (r *RedisDistinct) Forget(ctx context.Context, kind, key string) error {
	if err := checkDistinct(kind, key); err != nil {
		return err
	}
	if err := r.ks.Client.Del(ctx, r.keys(kind, key)...).Err(); err != nil {
		return fmt.Errorf("redis distinct: %w", err)
	}
	return nil
}

// keys names the ring of (kind, key): the slots, then the meta hash.
func (r *RedisDistinct) keys(kind, key string) []string {
	keys := make([]string, 0, distinctSlots+1)
	for i := range distinctSlots {
		keys = append(keys, r.ks.Tagged("d:"+kind, key, strconv.Itoa(i+1)))
	}
	return append(keys, r.ks.Tagged("d:"+kind, key, "m"))
}

// errBadKind refuses a kind that could change the shape of a key name.
var errBadKind = errors.New("redis distinct: kind must be 1-32 of [a-z0-9_]")

// checkDistinct checks that kind is a plain name and the rest HashIDs.
func checkDistinct(kind string, ids ...string) error {
	if len(kind) == 0 || len(kind) > 32 {
		return errBadKind
	}
	for i := 0; i < len(kind); i++ {
		if c := kind[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return errBadKind
		}
	}
	return checkHashIDs(ids...)
}

// FallbackDistinct answers from a shadowing MemoryDistinct whenever the
// primary (Redis) fails, as FallbackWindows does: enumeration keeps being
// counted on this instance during an outage, with its recent members
// already there.
type FallbackDistinct struct {
	primary query.Distinct
	mem     *MemoryDistinct
	onError func(op string)
}

// NewFallbackDistinct wraps primary; onError, when set, is told of each
// primary failure ("distinct_add", "distinct_forget").
func NewFallbackDistinct(primary query.Distinct, mem *MemoryDistinct, onError func(op string)) *FallbackDistinct {
	if mem == nil {
		mem = NewMemoryDistinct(nil)
	}
	return &FallbackDistinct{primary: primary, mem: mem, onError: onError}
}

// Add implements query.Distinct; it never fails.
func (f *FallbackDistinct) Add(ctx context.Context, s query.Span, key, member string, now time.Time) (int64, error) {
	kind, window := s.Kind, s.Within
	local, _ := f.mem.Add(ctx, query.Span{Kind: kind, Within: window}, key, member, now)
	n, err := f.primary.Add(ctx, query.Span{Kind: kind, Within: window}, key, member, now)
	if err != nil {
		f.failed("distinct_add", err)
		return local, nil
	}
	return n, nil
}

// Forget implements query.Distinct; it never fails.
func (f *FallbackDistinct) Forget(ctx context.Context, kind, key string) error {
	_ = f.mem.Forget(ctx, kind, key)
	if err := f.primary.Forget(ctx, kind, key); err != nil {
		f.failed("distinct_forget", err)
	}
	return nil
}

// failed reports a primary failure, except a caller's bug (a key that is
// not a HashID, a bad kind), which says nothing about the store's health.
func (f *FallbackDistinct) failed(op string, err error) {
	if f.onError != nil && !errors.Is(err, errNotHashID) && !errors.Is(err, errBadKind) {
		f.onError(op)
	}
}
