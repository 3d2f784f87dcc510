package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"

	"github.com/redis/go-redis/v9"
)

// RedisSums is the detect.SumWindow shared by every instance: one hash per
// key ("<prefix>s:<kind>:<hash>") whose fields are bucket starts (Unix µs)
// and values the bucket sums, following the bucket rule of MemorySums (see
// spanOf). One Add is one script, one round trip.
type RedisSums struct {
	ks Keyspace
}

// NewRedisSums returns a sum store in ks.
func NewRedisSums(ks Keyspace) *RedisSums {
	return &RedisSums{ks: ks}
}

// sumAddScript adds to one bucket, applies the bucket rule's drops and
// returns the sum of the buckets that count. Lua numbers are doubles, exact
// for integers below 2^53 only: a smaller total is returned as a number,
// a larger one as the bucket sums themselves, for Go to add up saturating
// at math.MaxInt64 exactly as MemorySums does. (Rounding is monotonic and
// the values are non-negative, so the double total reaches 2^53 exactly
// when the true one does.) Bucket starts stay far below 2^53 µs (year
// 2255), so comparing them as numbers is exact.
// KEYS: the hash. ARGV: bucket, v, cutoff, now, ttl ms, max buckets, max sum.
var sumAddScript = redis.NewScript(`
local key, bucket = KEYS[1], ARGV[1]
local cutoff, now, maxn = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local r = redis.pcall('HINCRBY', key, bucket, ARGV[2])
if type(r) == 'table' and r.err then
  if not string.find(r.err, 'overflow', 1, true) then return r end
  redis.call('HSET', key, bucket, ARGV[7])
end
local all = redis.call('HGETALL', key)
local live, gone = {}, {}
for i = 1, #all, 2 do
  local b = tonumber(all[i])
  if b <= cutoff then
    gone[#gone + 1] = all[i]
  else
    live[#live + 1] = {b, all[i], all[i + 1]}
  end
end
local first = 1
if #live > maxn then
  table.sort(live, function(x, y) return x[1] < y[1] end)
  first = #live - maxn + 1
  for i = 1, first - 1 do gone[#gone + 1] = live[i][2] end
end
if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
-- every bucket has left the window once it has passed
redis.call('PEXPIRE', key, ARGV[5])
local total, out = 0, {}
for i = first, #live do
  if live[i][1] <= now then
    total = total + tonumber(live[i][3])
    out[#out + 1] = live[i][3]
  end
end
if total < 9007199254740992 then return total end
return out
`)

// Add implements detect.SumWindow.
func (r *RedisSums) Add(ctx context.Context, sw detect.Sum, key string, v int64, now time.Time) (int64, error) {
	kind, window := sw.Kind, sw.Within
	if v < 0 {
		return 0, fmt.Errorf("redis sums: %w", errNegativeValue)
	}
	s, ok := spanOf(window, now)
	if !ok {
		return 0, nil
	}
	if err := checkHashIDs(key); err != nil {
		return 0, err
	}
	_, ttl := windowArgs(s.now, window)
	res, err := sumAddScript.Run(ctx, r.ks.Client, []string{r.key(kind, key)},
		strconv.FormatInt(s.bucket, 10), strconv.FormatInt(v, 10), strconv.FormatInt(s.cutoff, 10),
		strconv.FormatInt(s.now, 10), ttl, detect.MaxSumBuckets, strconv.FormatInt(math.MaxInt64, 10),
	).Result()
	if err != nil {
		return 0, fmt.Errorf("redis sums: %w", err)
	}
	switch res := res.(type) {
	case int64:
		return res, nil
	case []any:
		var total int64
		for _, val := range res {
			s, _ := val.(string)
			n, err := parseBucketSum(s)
			if err != nil {
				return 0, err
			}
			total = satAdd(total, n)
		}
		return total, nil
	}
	return 0, fmt.Errorf("redis sums: unexpected reply %T", res)
}

// Sum implements detect.SumWindow. It only reads (HGETALL, filtered here),
// so it may run against a replica.
func (r *RedisSums) Sum(ctx context.Context, sw detect.Sum, key string, now time.Time) (int64, error) {
	kind, window := sw.Kind, sw.Within
	s, ok := spanOf(window, now)
	if !ok {
		return 0, nil
	}
	if err := checkHashIDs(key); err != nil {
		return 0, err
	}
	fields, err := r.ks.Client.HGetAll(ctx, r.key(kind, key)).Result()
	if err != nil {
		return 0, fmt.Errorf("redis sums: %w", err)
	}
	var total int64
	for field, val := range fields {
		b, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redis sums: bucket %q: %w", field, err)
		}
		if !s.counts(b) {
			continue
		}
		n, err := parseBucketSum(val)
		if err != nil {
			return 0, err
		}
		total = satAdd(total, n)
	}
	return total, nil
}

// Forget implements detect.SumWindow.
func (r *RedisSums) Forget(ctx context.Context, kind detect.SumKind, key string) error {
	if err := checkHashIDs(key); err != nil {
		return err
	}
	if err := r.ks.Client.Del(ctx, r.key(kind, key)).Err(); err != nil {
		return fmt.Errorf("redis sums: %w", err)
	}
	return nil
}

func (r *RedisSums) key(kind detect.SumKind, hash string) string {
	return r.ks.Key("s", string(kind), hash)
}

// parseBucketSum reads one bucket's sum; a negative one can only come from
// someone else writing the key, and would break saturation.
func parseBucketSum(val string) (int64, error) {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis sums: bucket sum %q: %w", val, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("redis sums: bucket sum %d: %w", n, errNegativeValue)
	}
	return n, nil
}

// FallbackSums answers from a shadowing MemorySums whenever the primary
// (Redis) fails, as FallbackWindows does for windows: volume detection
// keeps working on this instance during an outage, with this instance's
// recent additions already counted.
type FallbackSums struct {
	primary detect.SumWindow
	mem     *MemorySums
	onError func(op string)
}

// NewFallbackSums wraps primary; onError, when set, is told of each primary
// failure ("sum_add", "sum_read", "sum_forget").
func NewFallbackSums(primary detect.SumWindow, mem *MemorySums, onError func(op string)) *FallbackSums {
	if mem == nil {
		mem = NewMemorySums(nil)
	}
	return &FallbackSums{primary: primary, mem: mem, onError: onError}
}

// Add implements detect.SumWindow; it fails only for a negative value, a
// caller's bug that no store would accept.
func (f *FallbackSums) Add(ctx context.Context, sw detect.Sum, key string, v int64, now time.Time) (int64, error) {
	local, err := f.mem.Add(ctx, sw, key, v, now)
	if err != nil {
		return 0, err
	}
	n, err := f.primary.Add(ctx, sw, key, v, now)
	if err != nil {
		f.failed("sum_add", err)
		return local, nil
	}
	return n, nil
}

// Sum implements detect.SumWindow; it never fails.
func (f *FallbackSums) Sum(ctx context.Context, sw detect.Sum, key string, now time.Time) (int64, error) {
	n, err := f.primary.Sum(ctx, sw, key, now)
	if err != nil {
		f.failed("sum_read", err)
		return f.mem.Sum(ctx, sw, key, now)
	}
	return n, nil
}

// Forget implements detect.SumWindow; it never fails.
func (f *FallbackSums) Forget(ctx context.Context, kind detect.SumKind, key string) error {
	_ = f.mem.Forget(ctx, kind, key)
	if err := f.primary.Forget(ctx, kind, key); err != nil {
		f.failed("sum_forget", err)
	}
	return nil
}

// Memory returns the local store, for tests and metrics.
func (f *FallbackSums) Memory() *MemorySums { return f.mem }

func (f *FallbackSums) failed(op string, err error) {
	if f.onError != nil && !errors.Is(err, errNotHashID) {
		f.onError(op)
	}
}
