package respond

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// The background half of RedisDecisions: the pub/sub subscriber that applies
// other instances' changes to this instance's cache, the periodic full
// resynchronisation, and the replay of decisions made while Redis was down.

// decodeAll splits the hash into active decisions and the (field, value)
// pairs of expired or unreadable ones.
func decodeAll(all map[string]string, now time.Time) (active []Decision, stale []any) {
	for f, v := range all {
		var d Decision
		if err := json.Unmarshal([]byte(v), &d); err != nil || !d.Active(now) {
			stale = append(stale, f, v)
			continue
		}
		active = append(active, d)
	}
	return active, stale
}

// run applies published changes and resynchronises after a reconnect and
// every ResyncEvery, until Close.
func (r *RedisDecisions) run(ctx context.Context, synced bool) {
	defer r.wg.Done()
	lastSync, lastExpire := time.Now(), time.Now()
	needSync := !synced
	pause := 50 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := r.pubsub.ReceiveTimeout(ctx, time.Second)
		var ne net.Error
		switch m := msg.(type) {
		case *redis.Subscription:
			// (re)subscribed: a reconnect may have lost messages
			needSync = needSync || m.Kind == "subscribe"
			pause = 50 * time.Millisecond
		case *redis.Message:
			r.apply(m.Payload)
		}
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			// Redis is unreachable: go-redis reconnects on the next receive;
			// wait a little so a dead server does not make this spin
			if !sleepCtx(ctx, pause) {
				return
			}
			pause = min(2*pause, time.Second)
		}
		if needSync || time.Since(lastSync) >= ResyncEvery {
			lastSync = time.Now()
			err := r.syncNow(ctx)
			needSync = false
			r.report(err)
			// a write on an idle subscription finds a dead socket, which
			// makes go-redis reconnect (and resubscribe) it
			_ = r.pubsub.Ping(ctx)
		}
		if now := time.Now(); now.Sub(lastExpire) >= time.Second {
			// keeps the decision gauge honest between resyncs
			lastExpire = now
			r.cache.Expire(now)
		}
	}
}

func (r *RedisDecisions) report(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		r.hooks.storeError("resync")
	}
	if r.onSync != nil && !errors.Is(err, context.Canceled) {
		r.onSync(err)
	}
}

// apply brings one published change into the cache.
func (r *RedisDecisions) apply(payload string) {
	var m decisionMsg
	if json.Unmarshal([]byte(payload), &m) != nil || m.From == r.id {
		return
	}
	r.syncMu.RLock()
	defer r.syncMu.RUnlock()
	switch {
	case m.Op == "set" && m.Decision != nil:
		r.cache.Set(*m.Decision)
	case m.Op == "del":
		r.cache.Remove(m.Kind, m.Target)
	}
}

// syncNow replays outage writes, then replaces the cache with the hash and
// deletes expired fields.
func (r *RedisDecisions) syncNow(ctx context.Context) error {
	if err := r.replay(ctx); err != nil {
		return err
	}
	r.syncMu.Lock()
	all, err := r.client.HGetAll(ctx, r.hashKey).Result()
	if err != nil {
		r.syncMu.Unlock()
		return err
	}
	now := time.Now()
	active, stale := decodeAll(all, now)
	// an outage write made since replay() stays in force until replayed
	r.mu.Lock()
	for key, op := range r.pending {
		if _, inRedis := all[key]; !op.lift && !inRedis && op.d.Active(now) {
			active = append(active, op.d)
		}
	}
	r.mu.Unlock()
	r.cache.Replace(active)
	r.syncMu.Unlock()
	if len(stale) > 0 {
		return sweepScript.Run(ctx, r.client, []string{r.hashKey}, stale...).Err()
	}
	return nil
}

// replay writes the decisions made and lifted locally during an outage. A
// replayed decision never shortens one another instance imposed meanwhile.
func (r *RedisDecisions) replay(ctx context.Context) error {
	r.mu.Lock()
	ops := make(map[string]pendingOp, len(r.pending))
	for k, op := range r.pending {
		ops[k] = op
	}
	r.mu.Unlock()
	now := time.Now()
	for key, op := range ops {
		var err error
		switch {
		case op.lift:
			_, err = r.lift(ctx, op.d.Kind, op.d.Target)
		case op.d.Active(now):
			err = r.put(ctx, op.d, true)
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		if cur, ok := r.pending[key]; ok && cur == op {
			delete(r.pending, key)
		}
		r.mu.Unlock()
	}
	return nil
}
