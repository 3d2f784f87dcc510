package store

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"

	"github.com/redis/go-redis/v9"
)

// RedisProfiles is the detect.Profiles shared by every instance: one string
// per record ("<prefix>p:<kind>:<hash>") with a TTL. Update is an optimistic
// compare-and-set rather than a lock: fn is the detector's Go code, which
// cannot run inside Redis, and a lock would leave the record stuck for its
// lease whenever an instance died holding it.
//
// Updates of one key within this process take turns first, so that only
// other instances can make a compare-and-set fail: twenty goroutines racing
// on one hot record would otherwise starve some of them past
// profileAttempts, while the cost of taking turns is only waiting.
type RedisProfiles struct {
	ks    Keyspace
	turns [256]chan struct{} // by the key's first byte; a channel so waiting honours ctx
}

// NewRedisProfiles returns a profile store in ks.
func NewRedisProfiles(ks Keyspace) *RedisProfiles {
	r := &RedisProfiles{ks: ks}
	for i := range r.turns {
		r.turns[i] = make(chan struct{}, 1)
	}
	return r
}

// profileAttempts bounds the compare-and-set retries of one Update: past
// it, the record is too hot to update fairly and the caller hears so.
const profileAttempts = 8

// errProfileConflict reports an Update that lost every compare-and-set.
var errProfileConflict = errors.New("profile changed by others on every attempt")

// profileCASScript writes the record only if it still is the one fn saw,
// identified by the SHA-1 of its bytes ("" when there was none): a digest
// rather than the bytes keeps the round trip small, and a collision would
// need someone to forge both records.
// KEYS: the record. ARGV: expected digest, "set" or "del", value, ttl ms.
var profileCASScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local seen = ''
if cur then seen = redis.sha1hex(cur) end
if seen ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
`)

// Get implements detect.Profiles.
func (r *RedisProfiles) Get(ctx context.Context, kind detect.ProfileKind, key string) ([]byte, error) {
	if err := checkHashIDs(key); err != nil {
		return nil, err
	}
	b, err := r.ks.Client.Get(ctx, r.key(kind, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis profiles: %w", err)
	}
	return b, nil
}

// Update implements detect.Profiles. fn may run several times, once per
// conflicting write by another instance, so it must depend on cur only.
func (r *RedisProfiles) Update(ctx context.Context, kind detect.ProfileKind, key string, ttl time.Duration, fn func(cur []byte) []byte) ([]byte, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("redis profiles: %w (%v)", errBadTTL, ttl)
	}
	if err := checkHashIDs(key); err != nil {
		return nil, err
	}
	turn, err := r.turn(key)
	if err != nil {
		return nil, err
	}
	select {
	case turn <- struct{}{}:
		defer func() { <-turn }()
	case <-ctx.Done():
		return nil, fmt.Errorf("redis profiles: %w", ctx.Err())
	}
	k := r.key(kind, key)
	ttlMS := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	for attempt := 1; ; attempt++ {
		cur, err := r.Get(ctx, kind, key)
		if err != nil {
			return nil, err
		}
		out := fn(cur)
		if len(out) > detect.MaxProfileBytes {
			return nil, fmt.Errorf("redis profiles: %d bytes: %w", len(out), ErrProfileTooLarge)
		}
		if out == nil && cur == nil {
			return nil, nil // nothing to delete
		}
		ok, err := r.swap(ctx, k, cur, out, ttlMS)
		if err != nil {
			return nil, err
		}
		if ok {
			return out, nil
		}
		if attempt == profileAttempts {
			return nil, fmt.Errorf("redis profiles: %d attempts: %w", attempt, errProfileConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, fmt.Errorf("redis profiles: %w", err)
		}
	}
}

// swap stores out (deletes the record when nil) if the record still is cur,
// and reports whether it did.
func (r *RedisProfiles) swap(ctx context.Context, k string, cur, out []byte, ttlMS int64) (bool, error) {
	digest := ""
	if cur != nil {
		sum := sha1.Sum(cur)
		digest = hex.EncodeToString(sum[:])
	}
	op := "set"
	if out == nil {
		op = "del"
	}
	n, err := profileCASScript.Run(ctx, r.ks.Client, []string{k}, digest, op, out, ttlMS).Int()
	if err != nil {
		return false, fmt.Errorf("redis profiles: %w", err)
	}
	return n == 1, nil
}

// backoff waits a random time below a bound that doubles with each attempt
// (100µs, 200µs … 6.4ms): instances retrying in lockstep would collide again.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(100*time.Microsecond) << (attempt - 1)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// turn is the channel that serialises this process's Updates of key, a
// checked HashID (so its first two characters are hex).
func (r *RedisProfiles) turn(key string) (chan struct{}, error) {
	i, err := strconv.ParseUint(key[:2], 16, 8)
	if err != nil {
		return nil, errNotHashID
	}
	return r.turns[i], nil
}

func (r *RedisProfiles) key(kind detect.ProfileKind, hash string) string {
	return r.ks.Key("p", string(kind), hash)
}

// FallbackProfiles answers from a shadowing MemoryProfiles whenever the
// primary (Redis) fails, as FallbackWindows does for windows. The shadow
// stores what the primary stored rather than running fn on its own copy, so
// that an outage starts from the shared record, not a diverged one.
type FallbackProfiles struct {
	primary detect.Profiles
	mem     *MemoryProfiles
	onError func(op string)
}

// NewFallbackProfiles wraps primary; onError, when set, is told of each
// primary failure ("profile_get", "profile_update").
func NewFallbackProfiles(primary detect.Profiles, mem *MemoryProfiles, onError func(op string)) *FallbackProfiles {
	if mem == nil {
		mem = NewMemoryProfiles(nil)
	}
	return &FallbackProfiles{primary: primary, mem: mem, onError: onError}
}

// Get implements detect.Profiles; it never fails.
func (f *FallbackProfiles) Get(ctx context.Context, kind detect.ProfileKind, key string) ([]byte, error) {
	b, err := f.primary.Get(ctx, kind, key)
	if err != nil {
		f.failed("profile_get", err)
		return f.mem.Get(ctx, kind, key)
	}
	return b, nil
}

// Update implements detect.Profiles. It fails only for what no store would
// accept (a record above detect.MaxProfileBytes, a non-positive ttl).
func (f *FallbackProfiles) Update(ctx context.Context, kind detect.ProfileKind, key string, ttl time.Duration, fn func(cur []byte) []byte) ([]byte, error) {
	out, err := f.primary.Update(ctx, kind, key, ttl, fn)
	if err == nil {
		_, _ = f.mem.Update(ctx, kind, key, ttl, func([]byte) []byte { return out })
		return out, nil
	}
	if errors.Is(err, ErrProfileTooLarge) || errors.Is(err, errBadTTL) {
		return nil, err
	}
	f.failed("profile_update", err)
	return f.mem.Update(ctx, kind, key, ttl, fn)
}

// Memory returns the local store, for tests and metrics.
func (f *FallbackProfiles) Memory() *MemoryProfiles { return f.mem }

func (f *FallbackProfiles) failed(op string, err error) {
	if f.onError != nil && !errors.Is(err, errNotHashID) {
		f.onError(op)
	}
}
