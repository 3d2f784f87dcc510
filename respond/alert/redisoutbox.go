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
//	<prefix>outbox:{<channel>}:due   sorted set: job ID -> due time (ms)
//	<prefix>outbox:{<channel>}:jobs  hash: job ID -> job JSON
//	<prefix>outbox:dedup:<hash>      string with a TTL, for deduplication
//
// The channel is a hash of the destination (see channelID) and the braces
// keep a channel's two keys in one cluster slot, so every script is atomic.
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

func ms(t time.Time) int64 { return t.UnixMilli() }

// storeJobLua stores job ARGV[2] as ARGV[1], due at ARGV[3], and (ARGV[5]
// > 0) makes the channel's keys expire that many ms later.
const storeJobLua = `
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if tonumber(ARGV[5]) > 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[5])
	redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return 1`

// putScript adds or replaces a job unless the queue (ARGV[4] at most) is
// full.
var putScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and tonumber(ARGV[4]) > 0
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
	return 0
end
` + storeJobLua)

// leaseScript takes the due jobs and pushes their due time to the lease
// end in one step, so two instances never lease the same job at once.
var leaseScript = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
	local job = redis.call('HGET', KEYS[2], id)
	if job then
		redis.call('ZADD', KEYS[1], ARGV[2], id)
		table.insert(out, job)
	else
		redis.call('ZREM', KEYS[1], id)
	end
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
	return 0
end
` + storeJobLua)

// takeScript removes a channel's queue and returns its jobs.
var takeScript = redis.NewScript(`
local jobs = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return jobs`)

func leaseArg(j Job) string {
	if j.Lease.IsZero() {
		return ""
	}
	return strconv.FormatInt(ms(j.Lease), 10)
}

// Put implements Outbox.
func (r *RedisOutbox) Put(ctx context.Context, ch string, j Job, maxQueue int, ttl time.Duration) (bool, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return false, fmt.Errorf("encoding alert job: %w", err)
	}
	n, err := putScript.Run(ctx, r.client, r.keys(ch), j.ID, b, ms(j.Due), maxQueue, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("outbox put: %w", err)
	}
	return n == 1, nil
}

// Lease implements Outbox.
func (r *RedisOutbox) Lease(ctx context.Context, ch string, now, until time.Time, n int) ([]Job, error) {
	raw, err := leaseScript.Run(ctx, r.client, r.keys(ch), ms(now), ms(until), n).StringSlice()
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
	if err := ackScript.Run(ctx, r.client, r.keys(ch), j.ID, leaseArg(j)).Err(); err != nil {
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
	if err := retryScript.Run(ctx, r.client, r.keys(ch), j.ID, b, ms(j.Due), leaseArg(j), ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("outbox retry: %w", err)
	}
	return nil
}

// Take implements Outbox.
func (r *RedisOutbox) Take(ctx context.Context, ch string) ([]Job, error) {
	raw, err := takeScript.Run(ctx, r.client, r.keys(ch)).StringSlice()
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
