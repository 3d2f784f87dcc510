package caddymodule

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/respond"
)

// statePool holds the store of each distinct store configuration, shared by
// the configs that use it; a reload takes it over before the old config is
// cleaned up, so nothing is lost.
var statePool = caddy.NewUsagePool()

type sharedState struct {
	store *respond.Store
	data  string // which data the store holds: its configuration, less the events' retention
}

// liveStates are the shared states not yet destructed. A reload that
// changes the store line creates a new state while the running config's is
// still among them (Caddy provisions the new config before it cleans up the
// old one), so the new state can take its decisions over. A set rather than
// a pointer to the latest: a reload that fails leaves no stale pointer
// behind. (statePool.Range cannot tell: it waits on the entry being built.)
var (
	liveMu     sync.Mutex
	liveStates = map[*sharedState]bool{}
)

// carryTimeout bounds copying the decisions of the previous store.
const carryTimeout = 2 * time.Minute

func newSharedState(cfg StoreConfig, opts respond.RedisStoreOptions) (*sharedState, error) {
	hooks := respond.Hooks{
		StoreError:   func(op string) { storeErrors.WithLabelValues(op).Inc() },
		EventDropped: eventsDroppedBy("store"),
		Evicted:      func(state string, n int) { evictionsOf(state)(n) },
		DecisionCount: func(kind respond.Kind, n int) {
			activeDecisions.WithLabelValues(string(kind)).Set(float64(n))
		},
	}
	data, _ := json.Marshal(cfg)
	var s *sharedState
	if cfg.Type == "memory" {
		s = &sharedState{store: respond.NewMemoryStore(respond.MemoryOptions{}, hooks), data: string(data)}
	} else {
		routeRedisLogs()
		ks, err := redisOptions(cfg).Open()
		if err != nil {
			return nil, err
		}
		store, err := respond.NewRedisStore(context.Background(), ks, opts, hooks)
		if err != nil {
			return nil, err
		}
		s = &sharedState{store: store, data: string(data)}
	}
	s.carryDecisions()
	return s, nil
}

// carryDecisions copies the active decisions of the live states that hold
// other data (the store the running config used) into s, and makes s live.
// Changing the store line (memory to Redis, one Redis to another) thus
// keeps every ban, lock and revocation; a decision s already holds that
// runs longer is kept. Strikes, counters and events stay behind.
func (s *sharedState) carryDecisions() {
	liveMu.Lock()
	var from []*sharedState
	for st := range liveStates {
		if st.data != s.data {
			from = append(from, st)
		}
	}
	liveStates[s] = true
	liveMu.Unlock()
	log := caddy.Log().Named("vigil")
	for _, st := range from {
		ctx, cancel := context.WithTimeout(context.Background(), carryTimeout)
		ds, err := st.store.Decisions.List(ctx, time.Now())
		if err != nil {
			log.Warn("decisions of the previous store not carried over", zap.Error(err))
		} else if len(ds) > 0 {
			queued := respond.PutMany(ctx, s.store.Decisions, ds)
			log.Info("decisions carried over to the new store", zap.Int("count", len(ds)), zap.Int("queued", queued))
		}
		cancel()
	}
}

// Destruct closes the store when the last config using it goes away.
func (s *sharedState) Destruct() error {
	liveMu.Lock()
	delete(liveStates, s)
	liveMu.Unlock()
	return s.store.Close()
}
