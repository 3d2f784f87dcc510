package respond

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vigilsec/vigil/internal/store"
)

// RedisDecisions is the DecisionStore shared by every instance. Decisions
// live in one hash, "<prefix>decisions" (field Decision.Key(), value the
// Decision's JSON plus "until_us" for the scripts); strikes in
// "<prefix>strike:<key>". Every change is published on the channel
// "<prefix>decisions"; each instance applies the messages of the others to
// its DecisionCache, and resynchronises fully at start, after a reconnect
// and every ResyncEvery as a backstop for lost messages.
//
// When Redis cannot be reached, writes are applied to the local cache (and a
// local strike count) so that enforcement keeps working on this instance
// (fail open); they are replayed into Redis once it answers again.
type RedisDecisions struct {
	ks      store.Keyspace
	client  redis.UniversalClient
	hashKey string // also the channel name
	cache   *DecisionCache
	hooks   Hooks
	id      string          // this instance, to skip its own messages
	onSync  func(err error) // told the outcome of every resync, for health

	// syncMu orders writes against resyncs: a write holds it shared from its
	// Redis call until its cache update, a resync exclusively from HGETALL
	// until Replace, so a snapshot can never undo a write made meanwhile.
	syncMu sync.RWMutex

	mu      sync.Mutex           // guards the outage state below
	strikes strikeBook           // local strikes while Redis is unreachable
	pending map[string]pendingOp // local writes to replay once Redis is back
	// maxPending bounds pending (DefaultMaxDecisions; smaller in tests):
	// see queuePending
	maxPending int

	pubsub *redis.PubSub
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// ResyncEvery is how often each instance reloads all decisions from Redis,
// in case a published change was missed.
const ResyncEvery = 5 * time.Second

// pendingOp is a write made during an outage: a decision to set or a lift.
type pendingOp struct {
	d    Decision
	lift bool
}

// storedDecision is the hash value: the Decision plus its end in Unix
// microseconds, as a string, so the scripts can compare it (Lua's cjson would
// print a number this large with too few digits).
type storedDecision struct {
	Decision
	UntilUS int64 `json:"until_us,string"`
}

// decisionMsg is what the channel carries.
type decisionMsg struct {
	Op       string    `json:"op"` // "set" or "del"
	From     string    `json:"from"`
	Decision *Decision `json:"decision,omitempty"`
	Kind     Kind      `json:"kind,omitempty"`
	Target   string    `json:"target,omitempty"`
}

// activeLua decodes the hash value cur and reports whether it runs past the
// microsecond time t.
const activeLua = `
local function active(cur, t)
  if not cur then return false end
  local ok, d = pcall(cjson.decode, cur)
  return ok and type(d) == 'table' and tonumber(d.until_us) ~= nil and tonumber(d.until_us) > tonumber(t)
end
`

// imposeScript: KEYS hash, strike. ARGV field, now µs, strike memory ms,
// template JSON, channel, instance id, then (until, until µs) for strikes
// 1..n, the last pair serving every later strike (the ban has reached max).
var imposeScript = redis.NewScript(activeLua + `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if active(cur, ARGV[2]) then return {0, cur} end
local strike = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local i = math.min(strike, (#ARGV - 6) / 2)
local d = cjson.decode(ARGV[4])
d.strike = strike
d['until'] = ARGV[5 + 2*i]
d.until_us = ARGV[6 + 2*i]
local v = cjson.encode(d)
redis.call('HSET', KEYS[1], ARGV[1], v)
redis.call('PUBLISH', ARGV[5], '{"op":"set","from":"' .. ARGV[6] .. '","decision":' .. v .. '}')
return {1, v}
`)

// putScript: KEYS hash. ARGV field, value, channel, message, until µs, only
// if longer ("1": keep a decision that already runs as long; for replays).
var putScript = redis.NewScript(activeLua + `
if ARGV[6] == '1' and active(redis.call('HGET', KEYS[1], ARGV[1]), tonumber(ARGV[5]) - 1) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// liftScript: KEYS hash, strike. ARGV field, channel, message. Returns the
// removed value, if any.
var liftScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return cur
`)

// sweepScript deletes (field, value) pairs only if unchanged, so a resync
// never removes a decision re-imposed since it read the hash.
var sweepScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0
`)

// NewRedisDecisions loads the decisions into cache and keeps it in sync
// until Close. ctx bounds only the initial load: the background work lives
// as long as the store (it survives config reloads), not as long as ctx. A
// Redis that cannot be reached is not an error: the cache fills once it can.
func NewRedisDecisions(ctx context.Context, ks store.Keyspace, cache *DecisionCache, hooks Hooks) (*RedisDecisions, error) {
	return newRedisDecisions(ctx, ks, cache, hooks, nil)
}

func newRedisDecisions(ctx context.Context, ks store.Keyspace, cache *DecisionCache, hooks Hooks, onSync func(error)) (*RedisDecisions, error) {
	if ks.Client == nil || cache == nil {
		return nil, errors.New("redis decisions: client and cache are required")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	client := ks.Client
	r := &RedisDecisions{
		ks: ks, client: client, hashKey: ks.Key("decisions"),
		cache: cache, hooks: hooks, id: hex.EncodeToString(b[:]), onSync: onSync,
		strikes: newStrikeBook(hooks.evictions(StateStrikes)), pending: map[string]pendingOp{},
		maxPending: DefaultMaxDecisions,
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	// Subscribe before the first load and wait for the confirmation, so that
	// no change published after the load can be missed.
	r.pubsub = client.Subscribe(loopCtx, r.hashKey)
	initCtx, done := context.WithTimeout(ctx, 3*time.Second)
	defer done()
	synced := false
	if msg, err := r.pubsub.ReceiveTimeout(initCtx, 2*time.Second); err == nil {
		if _, ok := msg.(*redis.Subscription); ok {
			synced = r.syncNow(initCtx) == nil
		}
	}
	if synced {
		r.report(nil)
	} else {
		r.report(errors.New("redis decisions: initial load failed"))
	}
	r.wg.Add(1)
	go r.run(loopCtx, synced)
	return r, nil
}

// Close stops the subscriber and the resync loop; it does not close the
// client, which the caller owns.
func (r *RedisDecisions) Close() error {
	r.once.Do(func() {
		r.cancel()
		_ = r.pubsub.Close()
		r.wg.Wait()
	})
	return nil
}

// Impose implements DecisionStore atomically in one script: the check for an
// active decision, the strike, the ban length and the publication.
func (r *RedisDecisions) Impose(ctx context.Context, d Decision, base, max time.Duration, now time.Time) (Decision, bool, error) {
	d = d.Canonical()
	key := d.Key()
	d.Strike, d.Created, d.Until = 0, now.UTC(), time.Time{}
	tmpl, err := json.Marshal(d)
	if err != nil {
		return Decision{}, false, err
	}
	args := []any{key, now.UnixMicro(), StrikeMemory(max).Milliseconds(), tmpl, r.hashKey, r.id}
	for _, step := range banSteps(base, max) {
		until := now.Add(step).UTC()
		args = append(args, until.Format(time.RFC3339Nano), until.UnixMicro())
	}
	r.syncMu.RLock()
	defer r.syncMu.RUnlock()
	res, err := imposeScript.Run(ctx, r.client, []string{r.hashKey, r.strikeKey(key)}, args...).Slice()
	var out Decision
	if err == nil {
		err = decodeImposed(res, &out)
	}
	if err != nil {
		r.hooks.storeError("impose")
		out, fresh := r.imposeLocal(d, base, max, now)
		return out, fresh, nil
	}
	r.cache.Set(out)
	r.settled(key)
	return out, res[0].(int64) == 1, nil
}

func decodeImposed(res []any, out *Decision) error {
	if len(res) == 2 {
		_, isInt := res[0].(int64)
		if v, ok := res[1].(string); ok && isInt {
			return json.Unmarshal([]byte(v), out)
		}
	}
	return fmt.Errorf("redis decisions: impose returned %v", res)
}

// imposeLocal is Impose while Redis is unreachable, as MemoryDecisions does it.
func (r *RedisDecisions) imposeLocal(d Decision, base, max time.Duration, now time.Time) (Decision, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.cache.Get(d.Kind, d.Target, now); ok {
		return cur, false
	}
	key := d.Key()
	strike := r.strikes.next(key, now, max)
	d.Strike = strike
	d.Until = now.Add(BanDuration(base, max, strike)).UTC()
	r.cache.Set(d)
	r.queuePending(key, pendingOp{d: d}, now)
	return d, true
}

// Put implements DecisionStore.
func (r *RedisDecisions) Put(ctx context.Context, d Decision) error {
	d = d.Canonical()
	r.syncMu.RLock()
	defer r.syncMu.RUnlock()
	if err := r.put(ctx, d, false); err != nil {
		r.hooks.storeError("put")
		r.mu.Lock()
		r.queuePending(d.Key(), pendingOp{d: d}, time.Now())
		r.mu.Unlock()
	} else {
		r.settled(d.Key())
	}
	r.cache.Set(d)
	return nil
}

func (r *RedisDecisions) put(ctx context.Context, d Decision, onlyIfLonger bool) error {
	v, err := json.Marshal(storedDecision{Decision: d, UntilUS: d.Until.UnixMicro()})
	if err != nil {
		return err
	}
	msg, _ := json.Marshal(decisionMsg{Op: "set", From: r.id, Decision: &d})
	flag := "0"
	if onlyIfLonger {
		flag = "1"
	}
	return putScript.Run(ctx, r.client, []string{r.hashKey}, d.Key(), v, r.hashKey, msg, d.Until.UnixMicro(), flag).Err()
}

// Lift implements DecisionStore.
func (r *RedisDecisions) Lift(ctx context.Context, kind Kind, target string, now time.Time) (bool, error) {
	key := DecisionKey(kind, target)
	_, wasLocal := r.cache.Get(kind, target, now)
	r.syncMu.RLock()
	defer r.syncMu.RUnlock()
	v, err := r.lift(ctx, kind, target)
	r.cache.Remove(kind, target)
	r.mu.Lock()
	r.strikes.forget(key)
	if err != nil {
		r.queuePending(key, pendingOp{d: Decision{Kind: kind, Target: target}, lift: true}, now)
	} else {
		delete(r.pending, key)
	}
	r.mu.Unlock()
	if err != nil {
		r.hooks.storeError("lift")
		return wasLocal, nil
	}
	var d Decision
	if v == "" || json.Unmarshal([]byte(v), &d) != nil {
		return wasLocal, nil
	}
	return d.Active(now), nil
}

func (r *RedisDecisions) lift(ctx context.Context, kind Kind, target string) (string, error) {
	key := DecisionKey(kind, target)
	msg, _ := json.Marshal(decisionMsg{Op: "del", From: r.id, Kind: kind, Target: target})
	v, err := liftScript.Run(ctx, r.client, []string{r.hashKey, r.strikeKey(key)}, key, r.hashKey, msg).Text()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// List implements DecisionStore: from Redis when it answers, else the cache.
func (r *RedisDecisions) List(ctx context.Context, now time.Time) ([]Decision, error) {
	all, err := r.client.HGetAll(ctx, r.hashKey).Result()
	if err != nil {
		r.hooks.storeError("list")
		return r.cache.List(now), nil
	}
	active, _ := decodeAll(all, now)
	sortDecisions(active)
	return active, nil
}

// settled forgets an outage write that a later successful write superseded.
func (r *RedisDecisions) settled(key string) {
	r.mu.Lock()
	delete(r.pending, key)
	r.mu.Unlock()
}

// strikeKey names the strike counter of a decision key. The impose and
// lift scripts touch it together with the hash, so in Redis Cluster it must
// land in the hash's slot.
func (r *RedisDecisions) strikeKey(key string) string {
	return r.ks.Beside(r.hashKey, "strike", key)
}

// banSteps lists the ban lengths of strikes 1, 2, … until they stop growing.
func banSteps(base, max time.Duration) []time.Duration {
	steps := []time.Duration{BanDuration(base, max, 1)}
	for s := 2; s <= 64; s++ {
		d := BanDuration(base, max, s)
		if d == steps[len(steps)-1] {
			break
		}
		steps = append(steps, d)
	}
	return steps
}
