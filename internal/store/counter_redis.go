package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"

	"github.com/redis/go-redis/v9"
)

// RedisCounter is the detect.LoginCounter shared by every instance through Redis.
// Each counter is a sorted set of failure times (scores) so that the window
// slides exactly like MemoryCounter's: one Reserve is one Lua script,
// one round trip, whatever the number of counters it touches.
//
// Times are kept at microsecond resolution: Redis scores are float64, which
// hold Unix microseconds exactly for millennia but not Unix nanoseconds. For
// times and windows that are whole microseconds the counts equal
// MemoryCounter's exactly, window edges included.
type RedisCounter struct {
	ks Keyspace // in a Cluster the keys of one attempt live in different slots: one script per key

	memberPrefix string        // random per process, so members never collide across instances
	seq          atomic.Uint64 // makes members unique within the process
}

// NewRedisCounter returns a counter whose keys are "<prefix>c:<kind>:<hash>".
func NewRedisCounter(ks Keyspace) *RedisCounter {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &RedisCounter{ks: ks, memberPrefix: hex.EncodeToString(b[:])}
}

// bumpLua adds one entry to a sorted set and keeps it within its window and
// within detect.MaxWindowEntries; it is shared by the combined and per-key scripts.
// The cutoff is computed in Go and passed as a string: Lua numbers turned into
// command arguments may be formatted with fewer digits than a timestamp has.
const bumpLua = `
local function bump(key, score, member, cutoff, ttl, maxn)
  -- a counter held full (see Hold) refuses the attempt until the hold ends
  local hold = redis.call('ZSCORE', key, 'hold')
  if hold then
    if tonumber(hold) > tonumber(score) then return maxn + 1 end
    redis.call('ZREM', key, 'hold')
  end
  redis.call('ZADD', key, score, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
  local n = redis.call('ZCARD', key)
  if n > maxn then
    -- saturate: drop the oldest entries (lowest scores) beyond the bound
    redis.call('ZREMRANGEBYRANK', key, 0, n - maxn - 1)
    n = maxn
  end
  -- the key cannot count anything once its window has passed
  redis.call('PEXPIRE', key, ttl)
  return n
end
`

// recordScript updates the four counters of one attempt atomically.
// KEYS: account, ip, pair, ip-accounts.
// ARGV: score, member, max, account member, and "cutoff ttl" of the four
// keys in one space-separated string (one argument instead of eight: each
// argument is an allocation on the login path); a ttl of "0" means the
// window is disabled and the key is left alone.
var recordScript = redis.NewScript(bumpLua + `
local maxn = tonumber(ARGV[3])
local out = {0, 0, 0, 0}
local w = {}
for v in string.gmatch(ARGV[5], '%S+') do w[#w + 1] = v end
for i = 1, 4 do
  local cutoff, ttl = w[2*i - 1], w[2*i]
  if ttl ~= '0' then
    local member = ARGV[2]
    if i == 4 then member = ARGV[4] end
    out[i] = bump(KEYS[i], ARGV[1], member, cutoff, ttl, maxn)
  end
end
return out
`)

// bumpScript is the single-key form for Redis Cluster, where the four keys
// of an attempt hash to different slots and cannot share a script.
// KEYS: the counter. ARGV: score, member, cutoff, ttl ms, max.
var bumpScript = redis.NewScript(bumpLua + `
return bump(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]))
`)

// maxWindowEntries is detect.MaxWindowEntries as a script argument, boxed
// once instead of on every login.
var maxWindowEntries any = strconv.Itoa(detect.MaxWindowEntries)

// Reserve implements detect.LoginCounter.
func (r *RedisCounter) Reserve(ctx context.Context, k detect.LoginKeys, w detect.LoginWindows, now time.Time) (detect.Attempt, detect.LoginCounts, error) {
	a := detect.Attempt{Keys: k}
	if err := checkHashIDs(k.Account, k.IP, k.Pair); err != nil {
		return a, detect.LoginCounts{}, err
	}
	score := now.UnixMicro()
	scoreArg := strconv.FormatInt(score, 10)
	member := scoreArg + "-" + r.memberPrefix + strconv.FormatUint(r.seq.Add(1), 36)
	a.Member = member
	keys := [4]string{
		r.key(detect.AccountCounter, k.Account), r.key(detect.IPCounter, k.IP),
		r.key(detect.PairCounter, k.Pair), r.key(detect.IPAccountsCount, k.IP),
	}
	windows := [4]time.Duration{w.Account, w.IP, w.Pair, w.Stuffing}

	var n [4]int64
	if r.ks.Cluster {
		members := [4]string{member, member, member, k.AccountMember}
		var cutoffs, ttls [4]string
		for i, win := range windows {
			cutoffs[i], ttls[i] = windowArgs(score, win)
		}
		var err error
		if n, err = r.recordPerKey(ctx, attempt{keys, members, cutoffs, ttls, scoreArg}); err != nil {
			return a, detect.LoginCounts{}, err
		}
	} else {
		var packed [128]byte
		wargs := packed[:0]
		for i, win := range windows {
			if i > 0 {
				wargs = append(wargs, ' ')
			}
			wargs = appendWindowArgs(wargs, score, win)
		}
		res, err := recordScript.Run(ctx, r.ks.Client, keys[:], scoreArg, member, maxWindowEntries, k.AccountMember, string(wargs)).Int64Slice()
		if err != nil {
			return a, detect.LoginCounts{}, fmt.Errorf("redis counter: %w", err)
		}
		if len(res) != 4 {
			return a, detect.LoginCounts{}, fmt.Errorf("redis counter: script returned %d counts", len(res))
		}
		copy(n[:], res)
	}
	return a, detect.LoginCounts{Account: int(n[0]), IP: int(n[1]), Pair: int(n[2]), AccountsFromIP: int(n[3])}, nil
}

// Release implements detect.LoginCounter: three ZREMs in one pipeline
// (one round trip; in Redis Cluster, one per node).
func (r *RedisCounter) Release(ctx context.Context, a detect.Attempt) error {
	k := a.Keys
	if err := checkHashIDs(k.Account, k.IP, k.Pair); err != nil {
		return err
	}
	if a.Member == "" {
		return nil // never reached Redis
	}
	pipe := r.ks.Client.Pipeline()
	pipe.ZRem(ctx, r.key(detect.AccountCounter, k.Account), a.Member)
	pipe.ZRem(ctx, r.key(detect.IPCounter, k.IP), a.Member)
	pipe.ZRem(ctx, r.key(detect.PairCounter, k.Pair), a.Member)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis counter: %w", err)
	}
	return nil
}

// attempt is the script arguments of one failed attempt, per counter.
type attempt struct {
	keys, members, cutoffs, ttls [4]string
	score                        string
}

// recordPerKey runs one bumpScript per enabled counter, pipelined so that
// cluster mode still costs one round trip per node. The counters are then
// not updated atomically together, which only matters for the instant
// between two of them.
func (r *RedisCounter) recordPerKey(ctx context.Context, a attempt) (n [4]int64, err error) {
	var cmds [4]*redis.Cmd
	keys := a.keys
	argsOf := func(i int) []any {
		return []any{a.score, a.members[i], a.cutoffs[i], a.ttls[i], detect.MaxWindowEntries}
	}
	pipe := r.ks.Client.Pipeline()
	for i := range keys {
		if a.ttls[i] != "0" {
			cmds[i] = bumpScript.EvalSha(ctx, pipe, keys[i:i+1], argsOf(i)...)
		}
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		if isNoScript(cmd.Err()) {
			// first use on this node: EVAL loads the script for next time
			cmd = bumpScript.Eval(ctx, r.ks.Client, keys[i:i+1], argsOf(i)...)
		}
		v, err := cmd.Int64()
		if err != nil {
			return n, fmt.Errorf("redis counter: %w", err)
		}
		n[i] = v
	}
	return n, nil
}

// clearScript empties a counter but keeps an active hold: a success that
// was in flight when the account was locked does not unlock it.
// KEYS: the counter.
var clearScript = redis.NewScript(`
local h = redis.call('ZSCORE', KEYS[1], 'hold')
redis.call('DEL', KEYS[1])
if h then
  redis.call('ZADD', KEYS[1], h, 'hold')
  redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(h) / 1000) + 1)
end
return 0
`)

// RecordSuccess implements detect.LoginCounter: the attempt leaves the
// address's counter and the account's and pair's failures are cleared, in
// one pipeline of single-key commands (Redis Cluster would refuse one
// command over keys of several slots).
func (r *RedisCounter) RecordSuccess(ctx context.Context, a detect.Attempt) error {
	k := a.Keys
	if err := checkHashIDs(k.Account, k.IP, k.Pair); err != nil {
		return err
	}
	pipe := r.ks.Client.Pipeline()
	if a.Member != "" {
		pipe.ZRem(ctx, r.key(detect.IPCounter, k.IP), a.Member)
	}
	keys := []string{r.key(detect.AccountCounter, k.Account), r.key(detect.PairCounter, k.Pair)}
	cmds := []*redis.Cmd{clearScript.EvalSha(ctx, pipe, keys[:1]), clearScript.EvalSha(ctx, pipe, keys[1:])}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			cmd = clearScript.Eval(ctx, r.ks.Client, keys[i:i+1])
		}
		if err := cmd.Err(); err != nil {
			return fmt.Errorf("redis counter: %w", err)
		}
	}
	return nil
}

// Hold implements detect.LoginCounter: the key is replaced by its one
// "hold" member, scored with the hold's end, expiring then.
func (r *RedisCounter) Hold(ctx context.Context, kind detect.CounterKind, key string, until time.Time) error {
	if err := checkHashIDs(key); err != nil {
		return err
	}
	ms := time.Until(until).Milliseconds() + 1
	if ms <= 1 {
		return r.Forget(ctx, kind, key)
	}
	k := r.key(kind, key)
	pipe := r.ks.Client.TxPipeline()
	pipe.Del(ctx, k)
	pipe.ZAdd(ctx, k, redis.Z{Score: float64(until.UnixMicro()), Member: "hold"})
	pipe.PExpire(ctx, k, time.Duration(ms)*time.Millisecond)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis counter: %w", err)
	}
	return nil
}

// Forget implements detect.LoginCounter.
func (r *RedisCounter) Forget(ctx context.Context, kind detect.CounterKind, key string) error {
	switch kind {
	case detect.AccountCounter, detect.IPCounter, detect.PairCounter, detect.IPAccountsCount:
	default:
		return fmt.Errorf("redis counter: unknown counter kind %q", kind)
	}
	if err := checkHashIDs(key); err != nil {
		return err
	}
	if err := r.ks.Client.Del(ctx, r.key(kind, key)).Err(); err != nil {
		return fmt.Errorf("redis counter: %w", err)
	}
	return nil
}

func (r *RedisCounter) key(kind detect.CounterKind, hash string) string {
	return r.ks.Key("c", string(kind), hash)
}

// windowArgs returns the score at or below which entries fall out of the
// window, and the key's TTL in milliseconds (rounded up, so a key never
// expires while an entry could still count); "0" disables the counter, as a
// non-positive window does in MemoryCounter.
func windowArgs(score int64, window time.Duration) (cutoff, ttl string) {
	b := appendWindowArgs(nil, score, window)
	i := strings.IndexByte(string(b), ' ')
	return string(b[:i]), string(b[i+1:])
}

// appendWindowArgs appends windowArgs' "cutoff ttl" to dst.
func appendWindowArgs(dst []byte, score int64, window time.Duration) []byte {
	if window <= 0 {
		return append(dst, "0 0"...)
	}
	ms := (window + time.Millisecond - 1) / time.Millisecond
	dst = strconv.AppendInt(dst, score-window.Microseconds(), 10)
	return strconv.AppendInt(append(dst, ' '), int64(ms), 10)
}

// errNotHashID refuses a key fragment that is not detect.HashID output, so that a
// caller's mistake can never turn user input into a Redis key.
var errNotHashID = errors.New("redis counter: key is not a detect.HashID")

func checkHashIDs(ids ...string) error {
	for _, id := range ids {
		if len(id) != 32 {
			return errNotHashID
		}
		for i := 0; i < len(id); i++ {
			if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return errNotHashID
			}
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}
