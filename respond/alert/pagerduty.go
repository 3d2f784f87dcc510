package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/detect"
)

// PagerDutyEndpoint is the Events API v2 enqueue URL (US service region);
// EU accounts use https://events.eu.pagerduty.com/v2/enqueue.
const PagerDutyEndpoint = "https://events.pagerduty.com/v2/enqueue"

// PagerDuty triggers an incident through the Events API v2. Repeats share
// the alert's dedup_key, so PagerDuty folds them into the open incident.
type PagerDuty struct {
	RoutingKey string
	Endpoint   string
}

// NewPagerDuty checks the routing (integration) key and the endpoint;
// an empty endpoint means PagerDutyEndpoint.
func NewPagerDuty(routingKey, endpoint string) (*PagerDuty, error) {
	if routingKey == "" {
		return nil, errors.New("pagerduty: a routing key is required")
	}
	if endpoint == "" {
		endpoint = PagerDutyEndpoint
	}
	if err := checkURL(endpoint); err != nil {
		return nil, fmt.Errorf("pagerduty endpoint: %w", err)
	}
	return &PagerDuty{RoutingKey: routingKey, Endpoint: endpoint}, nil
}

// Kind implements Sender.
func (p *PagerDuty) Kind() string { return "pagerduty" }

// Identity implements Sender.
func (p *PagerDuty) Identity() string { return p.Endpoint + "\x00" + p.RoutingKey }

// Send implements Sender. PagerDuty answers 202 on success, 400 for an
// invalid event (not retried), 429 when rate limited (retried).
func (p *PagerDuty) Send(ctx context.Context, m Message) error {
	return postJSON(ctx, p.Endpoint, marshal(PagerDutyEvent(p.RoutingKey, m.Alert)), nil)
}

// PagerDutySeverity maps Vigil severities onto PagerDuty's.
func PagerDutySeverity(s detect.Severity) string {
	switch s {
	case detect.Critical:
		return "critical"
	case detect.High:
		return "error"
	case detect.Medium:
		return "warning"
	default:
		return "info"
	}
}

// PagerDutyEvent is the Events API v2 trigger for an alert. The summary
// (≤ 1024 chars) and custom_details carry the alert; custom_details is the
// webhook body itself, so its size is bounded the same way.
func PagerDutyEvent(routingKey string, a Alert) map[string]any {
	source := a.Site
	if source == "" {
		source = "vigil"
	}
	var details map[string]any
	_ = json.Unmarshal(a.Body(), &details)
	return map[string]any{
		"routing_key":  routingKey,
		"event_action": "trigger",
		"dedup_key":    a.DedupKey,
		"client":       "Vigil",
		"payload": map[string]any{
			"summary":        cut("Vigil: "+a.Summary(), 1024),
			"source":         cut(source, 255),
			"severity":       PagerDutySeverity(a.Severity),
			"timestamp":      a.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			"component":      "vigil",
			"group":          cut(a.Site, 255),
			"class":          string(a.Type),
			"custom_details": details,
		},
	}
}

// Label implements Sender.
func (p *PagerDuty) Label() string { return "pagerduty " + redactURL(p.Endpoint) }
