package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/vigilsec/vigil/respond"
)

// statePool holds the store of each distinct store configuration, shared by
// the configs that use it; a reload takes it over before the old config is
// cleaned up, so nothing is lost.
var statePool = caddy.NewUsagePool()

type sharedState struct {
	store *respond.Store
}

func newSharedState(cfg StoreConfig, retention time.Duration) (*sharedState, error) {
	hooks := respond.Hooks{
		StoreError:   func(op string) { storeErrors.WithLabelValues(op).Inc() },
		EventDropped: eventsDroppedBy("store"),
		Evicted:      func(state string, n int) { evictionsOf(state)(n) },
		DecisionCount: func(kind respond.Kind, n int) {
			activeDecisions.WithLabelValues(string(kind)).Set(float64(n))
		},
	}
	if cfg.Type == "memory" {
		return &sharedState{store: respond.NewMemoryStore(respond.MemoryOptions{}, hooks)}, nil
	}
	routeRedisLogs()
	ks, err := redisOptions(cfg).Open()
	if err != nil {
		return nil, err
	}
	store, err := respond.NewRedisStore(context.Background(), ks, retention, hooks)
	if err != nil {
		return nil, err
	}
	return &sharedState{store: store}, nil
}

// Destruct closes the store when the last config using it goes away.
func (s *sharedState) Destruct() error { return s.store.Close() }
