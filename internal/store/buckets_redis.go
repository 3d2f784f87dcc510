package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
)

// RedisBuckets is the detect.Buckets shared by every instance: one hash per
// bucket ("<prefix>b:<kind>:<hash>") holding the time it will be empty
// (field "t", Unix µs) and its remembered members (field = member hash,
// value = last seen, Unix µs), following the rule of MemoryBuckets (see
// pourSpanOf). One pour is one script, one round trip, on one key, so
// Cluster needs no hash tag.
type RedisBuckets struct {
	ks Keyspace
}

// NewRedisBuckets returns a bucket store in ks.
func NewRedisBuckets(ks Keyspace) *RedisBuckets {
	return &RedisBuckets{ks: ks}
}

// pourScript applies the bucket rule. Every number is an integer below
// 2^53, so Lua's doubles are exact, and numbers are written back with
// %.0f (never in exponent form). The key always gets a TTL: until the
// bucket is empty and its members are out of memory, never shortened.
// KEYS: the hash. ARGV: now, cost, capacity, memory (µs), member ("" for
// none), max members. Returns {level µs, overflow 0/1}.
var pourScript = redis.NewScript(`
local key, member = KEYS[1], ARGV[5]
local now, cost, cap, mem = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local maxm = tonumber(ARGV[6])
local empty = tonumber(redis.call('HGET', key, 't')) or 0
local fresh, seen = true, nil
if member ~= '' then
  seen = tonumber(redis.call('HGET', key, member))
  if seen and seen > now - mem then fresh = false end
end
if fresh then
  empty = math.max(empty, now) + cost
  redis.call('HSET', key, 't', string.format('%.0f', empty))
end
local level = math.max(empty, now) - now
local keep = level
if member ~= '' then
  local all = redis.call('HGETALL', key)
  local live, gone = {}, {}
  for i = 1, #all, 2 do
    local f = all[i]
    if f ~= 't' and f ~= member then
      local s = tonumber(all[i + 1])
      if s <= now - mem then gone[#gone + 1] = f else live[#live + 1] = {s, f} end
    end
  end
  local first = 1
  if #live >= maxm then
    table.sort(live, function(x, y) return x[1] < y[1] end)
    first = #live - maxm + 2
    for i = 1, first - 1 do gone[#gone + 1] = live[i][2] end
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  if seen == nil or seen < now then seen = now end
  redis.call('HSET', key, member, string.format('%.0f', seen))
  keep = math.max(keep, seen + mem - now)
  for i = first, #live do keep = math.max(keep, live[i][1] + mem - now) end
end
-- never shorten the TTL: a pour without a member must not cut the memory
-- of the members (the memory store's sweep time only grows too)
local ttl = math.max(1, math.ceil(keep / 1000))
local cur = redis.call('PTTL', key)
if cur > ttl then ttl = cur end
redis.call('PEXPIRE', key, ttl)
if fresh and level > cap then return {level, 1} end
return {level, 0}
`)

// Pour implements detect.Buckets.
func (r *RedisBuckets) Pour(ctx context.Context, b detect.Bucket, key string, d detect.Drop, now time.Time) (float64, bool, error) {
	s, ok, err := pourSpanOf(b, d, now)
	if err != nil {
		return 0, false, fmt.Errorf("redis buckets: %w", err)
	}
	if !ok {
		return 0, false, nil
	}
	ids := []string{key}
	if d.Member != "" {
		ids = append(ids, d.Member)
	}
	if err := checkHashIDs(ids...); err != nil {
		return 0, false, err
	}
	res, err := pourScript.Run(ctx, r.ks.Client, []string{r.key(b.Kind, key)},
		s.now, s.cost, s.capacity, s.memory, d.Member, detect.MaxBucketMembers).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("redis buckets: %w", err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("redis buckets: unexpected reply %v", res)
	}
	return s.units(res[0]), res[1] == 1, nil
}

// Forget implements detect.Buckets.
func (r *RedisBuckets) Forget(ctx context.Context, kind detect.BucketKind, key string) error {
	if err := checkHashIDs(key); err != nil {
		return err
	}
	if err := r.ks.Client.Del(ctx, r.key(kind, key)).Err(); err != nil {
		return fmt.Errorf("redis buckets: %w", err)
	}
	return nil
}

func (r *RedisBuckets) key(kind detect.BucketKind, hash string) string {
	return r.ks.Key("b", string(kind), hash)
}

// FallbackBuckets answers from a shadowing MemoryBuckets whenever the
// primary (Redis) fails, as FallbackWindows does: probe detection keeps
// working on this instance during an outage, with this instance's recent
// pours already in its buckets.
type FallbackBuckets struct {
	primary detect.Buckets
	mem     *MemoryBuckets
	onError func(op string)
}

// NewFallbackBuckets wraps primary; onError, when set, is told of each
// primary failure ("bucket_pour", "bucket_forget").
func NewFallbackBuckets(primary detect.Buckets, mem *MemoryBuckets, onError func(op string)) *FallbackBuckets {
	if mem == nil {
		mem = NewMemoryBuckets(nil)
	}
	return &FallbackBuckets{primary: primary, mem: mem, onError: onError}
}

// Pour implements detect.Buckets; it fails only for a drop no store
// accepts (a caller's bug).
func (f *FallbackBuckets) Pour(ctx context.Context, b detect.Bucket, key string, d detect.Drop, now time.Time) (float64, bool, error) {
	local, over, err := f.mem.Pour(ctx, b, key, d, now)
	if err != nil {
		return 0, false, err
	}
	level, overflow, err := f.primary.Pour(ctx, b, key, d, now)
	if err != nil {
		f.failed("bucket_pour", err)
		return local, over, nil
	}
	return level, overflow, nil
}

// Forget implements detect.Buckets; it never fails.
func (f *FallbackBuckets) Forget(ctx context.Context, kind detect.BucketKind, key string) error {
	_ = f.mem.Forget(ctx, kind, key)
	if err := f.primary.Forget(ctx, kind, key); err != nil {
		f.failed("bucket_forget", err)
	}
	return nil
}

// Memory returns the local store, for tests and metrics.
func (f *FallbackBuckets) Memory() *MemoryBuckets { return f.mem }

func (f *FallbackBuckets) failed(op string, err error) {
	if f.onError != nil && !errors.Is(err, errNotHashID) {
		f.onError(op)
	}
}
