package audit_test

import (
	"github.com/vigilsec/vigil/respond"
	"github.com/vigilsec/vigil/respond/audit"
)

// The audit log is fed like every other sink: from the event bus.
var _ respond.Sink = (*audit.Log)(nil)
