package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect/risk"
)

// RedisRisk is the risk.Store shared by every instance. Each user's
// profile is one hash ("<prefix>r:u:<hash>", see risk_scripts.go) with the
// profile's TTL; the global tables are one hash per feature and
// generation ("<prefix>rg:{risk}:<gen>:<feature>"), next to the users'
// gates ("<prefix>rg:{risk}:gate:<hash>"), all under one Cluster hash tag
// so that one script updates them together.
//
// Learning only adds to counts (forward decay), so no instance ever has
// to read a profile, change it in Go and write it back: a login is one
// script on the user's hash and one on the global tables, pipelined in
// one round trip, with no compare-and-set to retry however many instances
// learn at once. Reading is one round trip too.
type RedisRisk struct {
	ks Keyspace

	mu      sync.Mutex
	keysGen int64 // the generation globals was built for
	globals [risk.NumFeatures]string
}

// NewRedisRisk returns a risk store in ks.
func NewRedisRisk(ks Keyspace) *RedisRisk {
	return &RedisRisk{ks: ks, keysGen: math.MinInt64}
}

// Read implements risk.Store.
func (r *RedisRisk) Read(ctx context.Context, q *risk.Query) (risk.Counts, error) {
	var c risk.Counts
	if err := checkHashIDs(q.User); err != nil {
		return c, err
	}
	gen, epoch := risk.GlobalGeneration(q.Now, q.Tables.HalfLife)
	userKey := r.userKey(q.User)
	globals := r.globalKeys(gen, q)
	var feats, near, keys [256]byte // 7 features of 17 bytes, 10 near keys of 17
	userArgs := []any{packFeatures(feats[:0], q, false), packNear(near[:0], q)}
	globalArgs := []any{packGlobalKeys(keys[:0], q, false)}

	user := scriptCall{riskUserReadScript, []string{userKey}, userArgs}
	global := scriptCall{riskGlobalReadScript, globals, globalArgs}
	pipe := r.ks.Client.Pipeline()
	uc, gc := user.queue(ctx, pipe), global.queue(ctx, pipe)
	_, _ = pipe.Exec(ctx) // errors are read per command below
	us, err := user.reply(ctx, r.ks.Client, uc).Text()
	if err != nil {
		return c, fmt.Errorf("redis risk: reading the profile: %w", err)
	}
	gs, err := global.reply(ctx, r.ks.Client, gc).Text()
	if err != nil {
		return c, fmt.Errorf("redis risk: reading the global tables: %w", err)
	}
	if err := parseUserRead(&c, q, us); err != nil {
		return c, err
	}
	hl := float64(q.Tables.HalfLife.Milliseconds())
	return c, parseGlobalRead(&c, q, gs, math.Exp2(-float64(q.Now.UnixMilli()-epoch.UnixMilli())/hl))
}

// Learn implements risk.Store.
func (r *RedisRisk) Learn(ctx context.Context, q *risk.Query) error {
	if err := checkHashIDs(q.User); err != nil {
		return err
	}
	now := q.Now.UnixMilli()
	hl := q.Tables.HalfLife.Milliseconds()
	gen, epoch := risk.GlobalGeneration(q.Now, q.Tables.HalfLife)
	var feats, keys [256]byte
	userKeys := []string{r.userKey(q.User)}
	userArgs := []any{now, hl, q.Tables.UserTTL.Milliseconds(), packFeatures(feats[:0], q, true)}
	gate := "0"
	if every := q.Tables.GlobalEvery.Milliseconds(); every > 0 {
		gate = strconv.FormatInt(now+every, 10)
	}
	w := math.Exp2(float64(now-epoch.UnixMilli()) / float64(hl))
	globalKeys := append([]string{r.ks.Tagged("rg", "risk", "gate", q.User)}, r.globalKeys(gen, q)...)
	globalArgs := []any{now, gate, strconv.FormatFloat(w, 'g', 17, 64), packGlobalKeys(keys[:0], q, true),
		q.Tables.UserTTL.Milliseconds(), risk.GlobalSample}

	user := scriptCall{riskUserLearnScript, userKeys, userArgs}
	global := scriptCall{riskGlobalLearnScript, globalKeys, globalArgs}
	pipe := r.ks.Client.Pipeline()
	uc, gc := user.queue(ctx, pipe), global.queue(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	if err := user.reply(ctx, r.ks.Client, uc).Err(); err != nil {
		return fmt.Errorf("redis risk: learning the profile: %w", err)
	}
	if err := global.reply(ctx, r.ks.Client, gc).Err(); err != nil {
		return fmt.Errorf("redis risk: learning the global tables: %w", err)
	}
	return nil
}

// scriptCall is one script with its keys and arguments.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// queue adds the call to a pipeline by its SHA (EVALSHA).
func (s scriptCall) queue(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	return s.script.EvalSha(ctx, pipe, s.keys, s.args...)
}

// reply is the pipelined command's answer; on NOSCRIPT (the first use on
// this server, or after SCRIPT FLUSH) it runs the script with EVAL, which
// also loads it for next time.
func (s scriptCall) reply(ctx context.Context, c redis.UniversalClient, cmd *redis.Cmd) *redis.Cmd {
	if isNoScript(cmd.Err()) {
		return s.script.Eval(ctx, c, s.keys, s.args...)
	}
	return cmd
}

func (r *RedisRisk) userKey(user string) string { return r.ks.Key("r", "u", user) }

// globalKeys are the global hashes of q's features, in Feature order;
// their names are built once per generation.
func (r *RedisRisk) globalKeys(gen int64, q *risk.Query) []string {
	r.mu.Lock()
	if r.keysGen != gen {
		g := strconv.FormatInt(gen, 10)
		for f := range risk.NumFeatures {
			r.globals[f] = r.ks.Tagged("rg", "risk", g, risk.Feature(f).String())
		}
		r.keysGen = gen
	}
	all := r.globals
	r.mu.Unlock()
	keys := make([]string, 0, risk.NumFeatures)
	for f := range risk.NumFeatures {
		if q.Has[f] {
			keys = append(keys, all[f])
		}
	}
	return keys
}

const hexDigits = "0123456789abcdef"

func appendHex16(b []byte, k uint64) []byte {
	for s := 60; s >= 0; s -= 4 {
		b = append(b, hexDigits[k>>uint(s)&0xf])
	}
	return b
}

func appendPadded(b []byte, n, width int) []byte {
	var d [8]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}

// packFeatures is the features of q as the user scripts take them: code
// and key, and with withK the table's bound in 3 digits.
func packFeatures(b []byte, q *risk.Query, withK bool) string {
	for f := range risk.NumFeatures {
		if !q.Has[f] {
			continue
		}
		b = appendHex16(append(b, risk.Feature(f).Code()), q.Keys[f])
		if withK {
			b = appendPadded(b, min(q.Tables.UserK[f], 999), 3)
		}
	}
	return string(b)
}

// packNear is the nearby keys of q's features, with their feature's code.
func packNear(b []byte, q *risk.Query) string {
	for i, k := range q.Near {
		if f := risk.NearFeature(i); q.Has[f] {
			b = appendHex16(append(b, f.Code()), k)
		}
	}
	return string(b)
}

// packGlobalKeys is the keys of q's values, and with withK the global
// tables' bounds in 6 digits.
func packGlobalKeys(b []byte, q *risk.Query, withK bool) string {
	for f := range risk.NumFeatures {
		if !q.Has[f] {
			continue
		}
		b = appendHex16(b, q.Keys[f])
		if withK {
			b = appendPadded(b, min(q.Tables.GlobalK[f], 999_999), 6)
		}
	}
	return string(b)
}

var errRiskReply = errors.New("redis risk: malformed script reply")

// fields iterates over a comma-separated reply without allocating.
type fields struct {
	s    string
	done bool
}

// next returns the next field as a number (0 when empty).
func (f *fields) next() (float64, error) {
	if f.done {
		return 0, errRiskReply
	}
	v := f.s
	if i := strings.IndexByte(f.s, ','); i >= 0 {
		v, f.s = f.s[:i], f.s[i+1:]
	} else {
		f.done = true
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, errRiskReply
	}
	return n, nil
}

func parseUserRead(c *risk.Counts, q *risk.Query, s string) error {
	f := fields{s: s}
	e, err := f.next()
	if err != nil {
		return err
	}
	n, err := f.next()
	if err != nil {
		return err
	}
	if n == 0 {
		return nil // no profile: it said nothing yet
	}
	c.Logins = int64(n)
	hl := float64(q.Tables.HalfLife.Milliseconds())
	scale := math.Exp2(-(float64(q.Now.UnixMilli()) - e) / hl)
	for ft := range risk.NumFeatures {
		if !q.Has[ft] {
			continue
		}
		var v [3]float64
		for i := range v {
			if v[i], err = f.next(); err != nil {
				return err
			}
		}
		c.User[ft] = risk.Tally{Count: v[0] * scale, Total: v[1] * scale, New: v[2] * scale}
	}
	for i := range c.Near {
		if !q.Has[risk.NearFeature(i)] {
			continue
		}
		w, err := f.next()
		if err != nil {
			return err
		}
		c.Near[i] = w * scale
	}
	if q.Has[risk.ASN] {
		w, err := f.next()
		if err != nil {
			return err
		}
		c.IPNew = w * scale
	}
	return nil
}

func parseGlobalRead(c *risk.Counts, q *risk.Query, s string, scale float64) error {
	f := fields{s: s}
	for ft := range risk.NumFeatures {
		if !q.Has[ft] {
			continue
		}
		v, err := f.next()
		if err != nil {
			return err
		}
		t, err := f.next()
		if err != nil {
			return err
		}
		c.Global[ft] = risk.Tally{Count: v * scale, Total: t * scale}
	}
	return nil
}
