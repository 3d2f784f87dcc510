package report

import (
	"sort"
	"time"

	"github.com/vigilsec/vigil/respond"
)

// Decisions are the blocks, locks and revocations in force when the
// report was made.
type Decisions struct {
	Total  int                `json:"total"`
	ByKind map[string]int     `json:"by_kind"`
	Active []respond.Decision `json:"active"` // by kind, then target
}

func decisions(ds []respond.Decision, now time.Time) Decisions {
	out := Decisions{ByKind: map[string]int{}, Active: []respond.Decision{}}
	for _, d := range ds {
		if !d.Active(now) {
			continue
		}
		out.Active = append(out.Active, d)
		out.ByKind[string(d.Kind)]++
	}
	out.Total = len(out.Active)
	sort.SliceStable(out.Active, func(i, j int) bool {
		a, b := out.Active[i], out.Active[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Target < b.Target
	})
	return out
}

// AlertStats are the alert channels' delivery figures, as the caller gave
// them.
type AlertStats struct {
	Supplied bool           `json:"supplied"`
	Channels []ChannelStats `json:"channels"`
	Total    AlertFigures   `json:"total"`
}

// ChannelStats is one channel's figures; Delivered is the percentage of
// alerts sent among those sent or dropped (one decimal; 100 with neither).
type ChannelStats struct {
	Channel string `json:"channel"`
	AlertFigures
	Delivered float64 `json:"delivered_percent"`
}

func alertStats(m map[string]AlertFigures) AlertStats {
	out := AlertStats{Supplied: m != nil, Channels: []ChannelStats{}}
	for ch, f := range m {
		out.Channels = append(out.Channels, ChannelStats{Channel: ch, AlertFigures: f, Delivered: delivered(f)})
		out.Total.Sent += f.Sent
		out.Total.Failed += f.Failed
		out.Total.Dropped += f.Dropped
	}
	sort.Slice(out.Channels, func(i, j int) bool { return out.Channels[i].Channel < out.Channels[j].Channel })
	return out
}

func delivered(f AlertFigures) float64 {
	if f.Sent+f.Dropped == 0 {
		return 100
	}
	return round(100*float64(f.Sent)/float64(f.Sent+f.Dropped), 1)
}

// Audit is the audit chain's verification as the caller supplied it.
type Audit struct {
	Supplied bool `json:"supplied"`
	AuditStatus
	Status string `json:"status"` // verified, FAILED or not verified
}

// Audit statuses.
const (
	AuditVerified    = "verified"
	AuditFailed      = "FAILED"
	AuditNotVerified = "not verified"
)

func audit(a *AuditStatus) Audit {
	if a == nil {
		return Audit{Status: AuditNotVerified}
	}
	out := Audit{Supplied: true, AuditStatus: *a, Status: AuditFailed}
	out.LastCheckpoint = out.LastCheckpoint.UTC()
	if a.Verified && a.Problem == "" {
		out.Status = AuditVerified
	}
	return out
}
