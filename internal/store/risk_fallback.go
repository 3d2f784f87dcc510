package store

import (
	"context"
	"errors"

	"github.com/vigilsec/vigil/detect/risk"
)

// FallbackRisk answers from a shadowing MemoryRisk whenever the primary
// (Redis) fails, as FallbackBuckets does. The shadow learns every login
// this instance sees, so during an outage the users who logged in here
// keep their profiles; the others read as unknown (learning, score 0):
// the risk model fails open.
type FallbackRisk struct {
	primary risk.Store
	mem     *MemoryRisk
	onError func(op string)
}

// NewFallbackRisk wraps primary; onError, when set, is told of each
// primary failure ("risk_read", "risk_learn").
func NewFallbackRisk(primary risk.Store, mem *MemoryRisk, onError func(op string)) *FallbackRisk {
	if mem == nil {
		mem = NewMemoryRisk(0, nil)
	}
	return &FallbackRisk{primary: primary, mem: mem, onError: onError}
}

// Read implements risk.Store; it never fails.
func (f *FallbackRisk) Read(ctx context.Context, q *risk.Query) (risk.Counts, error) {
	c, err := f.primary.Read(ctx, q)
	if err != nil {
		f.failed("risk_read", err)
		return f.mem.Read(ctx, q)
	}
	return c, nil
}

// Learn implements risk.Store; it never fails.
func (f *FallbackRisk) Learn(ctx context.Context, q *risk.Query) error {
	_ = f.mem.Learn(ctx, q)
	if err := f.primary.Learn(ctx, q); err != nil {
		f.failed("risk_learn", err)
	}
	return nil
}

// Memory returns the local store, for tests and metrics.
func (f *FallbackRisk) Memory() *MemoryRisk { return f.mem }

func (f *FallbackRisk) failed(op string, err error) {
	if f.onError != nil && !errors.Is(err, errNotHashID) {
		f.onError(op)
	}
}
