package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vigilsec/vigil/internal/store"
)

// RedisOutbox keeps jobs in Redis, so alerts queued before a gateway
// restart (or on an instance that died) are still delivered. Per channel:
//
//	<prefix>outbox:{<channel>}:due     sorted set: job ID -> due time (ms)
//	<prefix>outbox:{<channel>}:jobs    hash: job ID -> job JSON
//	<prefix>outbox:{<channel>}:urgent  sorted set: MEDIUM+ job ID -> due time (ms)
//	<prefix>outbox:{<channel>}:low     sorted set: LOW job ID -> queued time (ms)
//	<prefix>outbox:dedup:<hash>        string with a TTL, for deduplication
//
// urgent and low are indexes over due: urgent lets Lease take MEDIUM+ jobs
// before a backlog of LOW ones, low lets a full queue evict its oldest LOW
// job for a MEDIUM+ one. The channel is a hash of the destination (see
// channelID) and the braces keep a channel's keys in one cluster slot, so
// every script is atomic.
type RedisOutbox struct {
	ks     store.Keyspace
	client redis.UniversalClient
}

// NewRedisOutbox uses the keyspace's client (not closed by the outbox).
func NewRedisOutbox(ks store.Keyspace) *RedisOutbox {
	return &RedisOutbox{ks: ks, client: ks.Client}
}

func (r *RedisOutbox) keys(ch string) []string {
	return []string{r.ks.Tagged("outbox", ch, "due"), r.ks.Tagged("outbox", ch, "jobs")}
}

// scriptKeys are the keys every script takes: due, jobs, urgent, low.
func (r *RedisOutbox) scriptKeys(ch string) []string {
	return append(r.keys(ch), r.ks.Tagged("outbox", ch, "urgent"), r.ks.Tagged("outbox", ch, "low"))
}

// class is the job's index: "u" (urgent, MEDIUM+) or "l" (LOW).
func class(j Job) string {
	if isLow(j.Alert.Severity) {
		return "l"
	}
	return "u"
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// storeJobLua stores job ARGV[2] as ARGV[1], due at ARGV[3], indexes it
// by its class ARGV[6] (queued at ARGV[7] ms) and (ARGV[5] > 0) makes the
// channel's keys expire that many ms later.
const storeJobLua = `
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if ARGV[6] == 'u' then
	redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
else
	redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
end
if tonumber(ARGV[5]) > 0 then
	for i = 1, 4 do
		redis.call('PEXPIRE', KEYS[i], ARGV[5])
	end
end
`

// putScript adds or replaces a job. When the queue holds ARGV[4] jobs, a
// LOW job is refused (0) and an urgent one takes the place of the oldest
// LOW job (2), or is refused when there is none.
var putScript = redis.NewScript(`
local res = 1
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and tonumber(ARGV[4]) > 0
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
	if ARGV[6] ~= 'u' then
		return 0
	end
	while res == 1 do
		local old = redis.call('ZRANGE', KEYS[4], 0, 0)
		if #old == 0 then
			return 0
		end
		redis.call('ZREM', KEYS[4], old[1])
		if redis.call('ZREM', KEYS[1], old[1]) == 1 then
			redis.call('HDEL', KEYS[2], old[1])
			res = 2
		end
	end
end
` + storeJobLua + `
return res`)

// leaseScript takes the due jobs, urgent ones first, and pushes their due
// time to the lease end in one step, so two instances never lease the same
// job at once. The second pass cannot return a job of the first: those are
// due at the lease end now.
var leaseScript = redis.NewScript(`
local out = {}
local function take(ids)
	for _, id in ipairs(ids) do
		local job = redis.call('HGET', KEYS[2], id)
		if job then
			redis.call('ZADD', KEYS[1], ARGV[2], id)
			redis.call('ZADD', KEYS[3], 'XX', ARGV[2], id)
			table.insert(out, job)
		else
			redis.call('ZREM', KEYS[1], id)
			redis.call('ZREM', KEYS[3], id)
			redis.call('ZREM', KEYS[4], id)
		end
	end
end
take(redis.call('ZRANGE', KEYS[3], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3])))
local left = tonumber(ARGV[3]) - #out
if left > 0 then
	take(redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, left))
end
return out`)

// ackScript removes a job if the caller still holds its lease (ARGV[2]:
// the lease end in ms, "" for no condition).
var ackScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and ARGV[2] ~= '' and tonumber(s) ~= tonumber(ARGV[2]) then
	return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1`)

// retryScript reschedules a job the caller still holds; a job that is gone
// (acknowledged by another holder) stays gone.
var retryScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s == false or (ARGV[4] ~= '' and tonumber(s) ~= tonumber(ARGV[4])) then
	return 0
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
	redis.call('ZREM', KEYS[1], ARGV[1])
	redis.call('ZREM', KEYS[3], ARGV[1])
	redis.call('ZREM', KEYS[4], ARGV[1])
	return 0
end
` + storeJobLua + `
return 1`)

// takeScript removes a channel's queue and returns its jobs.
var takeScript = redis.NewScript(`
local jobs = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return jobs`)

func leaseArg(j Job) string {
	if j.Lease.IsZero() {
		return ""
	}
	return strconv.FormatInt(ms(j.Lease), 10)
}

// Put implements Outbox.
func (r *RedisOutbox) Put(ctx context.Context, ch string, j Job, maxQueue int, ttl time.Duration) (PutResult, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return PutFull, fmt.Errorf("encoding alert job: %w", err)
	}
	n, err := putScript.Run(ctx, r.client, r.scriptKeys(ch), j.ID, b, ms(j.Due), maxQueue, ttl.Milliseconds(), class(j), ms(j.Queued)).Int()
	if err != nil {
		return PutFull, fmt.Errorf("outbox put: %w", err)
	}
	switch n {
	case 1:
		return PutOK, nil
	case 2:
		return PutEvicted, nil
	}
	return PutFull, nil
}

// Lease implements Outbox.
func (r *RedisOutbox) Lease(ctx context.Context, ch string, now, until time.Time, n int) ([]Job, error) {
	raw, err := leaseScript.Run(ctx, r.client, r.scriptKeys(ch), ms(now), ms(until), n).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("outbox lease: %w", err)
	}
	jobs := make([]Job, 0, len(raw))
	for _, s := range raw {
		var j Job
		if err := json.Unmarshal([]byte(s), &j); err != nil {
			return jobs, fmt.Errorf("outbox lease: decoding a job: %w", err)
		}
		j.Due, j.Lease = until, until
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// Ack implements Outbox.
func (r *RedisOutbox) Ack(ctx context.Context, ch string, j Job) error {
	if err := ackScript.Run(ctx, r.client, r.scriptKeys(ch), j.ID, leaseArg(j)).Err(); err != nil {
		return fmt.Errorf("outbox ack: %w", err)
	}
	return nil
}

// Retry implements Outbox.
func (r *RedisOutbox) Retry(ctx context.Context, ch string, j Job, ttl time.Duration) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encoding alert job: %w", err)
	}
	if err := retryScript.Run(ctx, r.client, r.scriptKeys(ch), j.ID, b, ms(j.Due), leaseArg(j), ttl.Milliseconds(), class(j), ms(j.Queued)).Err(); err != nil {
		return fmt.Errorf("outbox retry: %w", err)
	}
	return nil
}

// Take implements Outbox.
func (r *RedisOutbox) Take(ctx context.Context, ch string) ([]Job, error) {
	raw, err := takeScript.Run(ctx, r.client, r.scriptKeys(ch)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("outbox take: %w", err)
	}
	now := time.Now()
	jobs := make([]Job, 0, len(raw))
	for _, s := range raw {
		var j Job
		if err := json.Unmarshal([]byte(s), &j); err != nil {
			continue // unreadable: nothing to deliver
		}
		j.Due = now
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Queued.Before(jobs[b].Queued) })
	return jobs, nil
}

// Next implements Outbox.
func (r *RedisOutbox) Next(ctx context.Context, ch string) (time.Time, int, error) {
	k := r.keys(ch)
	var first *redis.ZSliceCmd
	var card *redis.IntCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		first = p.ZRangeWithScores(ctx, k[0], 0, 0)
		card = p.ZCard(ctx, k[0])
		return nil
	})
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("outbox next: %w", err)
	}
	var next time.Time
	if zs := first.Val(); len(zs) > 0 {
		next = time.UnixMilli(int64(zs[0].Score))
	}
	return next, int(card.Val()), nil
}

// FirstSeen implements Outbox with SET NX PX: shared by every instance, so
// a repeat seen by another gateway is suppressed too.
func (r *RedisOutbox) FirstSeen(ctx context.Context, ch, key string, window time.Duration) (bool, error) {
	sum := sha256.Sum256([]byte(ch + "\x00" + key))
	k := r.ks.Key("outbox", "dedup", hex.EncodeToString(sum[:16]))
	ok, err := r.client.SetNX(ctx, k, strconv.FormatInt(time.Now().Unix(), 10), window).Result()
	if err != nil {
		return true, fmt.Errorf("outbox dedup: %w", err)
	}
	return ok, nil
}
