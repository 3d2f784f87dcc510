package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/vigilsec/vigil/detect"
)

// eventEmitter publishes every security event as a Caddy event named
// "vigil.<type in lower case>" (vigil.account_locked …) so other modules
// (events exec, custom handlers) can react. Caddy runs event handlers
// synchronously, so emitting happens on a goroutine of this config, fed
// through a bounded queue; when nothing subscribes, Record pays only the
// ShouldEmit lookup.
type eventEmitter struct {
	events *caddyevents.App
	ctx    caddy.Context
	queue  chan detect.Event
}

// eventNames are precomputed so Record does not allocate a name per event.
var eventNames = func() map[detect.Type]string {
	m := make(map[detect.Type]string, len(detect.Types))
	for _, t := range detect.Types {
		m[t] = eventName(t)
	}
	return m
}()

func eventName(t detect.Type) string { return "vigil." + strings.ToLower(string(t)) }

const eventQueue = 1024

// newEventEmitter starts the emitting goroutine; it ends with the config
// (ctx.Done), so a reload never leaks it.
func newEventEmitter(ctx caddy.Context) (*eventEmitter, error) {
	app, err := ctx.App("events")
	if err != nil {
		return nil, err
	}
	em := &eventEmitter{events: app.(*caddyevents.App), ctx: ctx, queue: make(chan detect.Event, eventQueue)}
	go em.run()
	return em, nil
}

func (em *eventEmitter) run() {
	for {
		select {
		case e := <-em.queue:
			em.events.Emit(em.ctx, nameOf(e.Type), eventData(e))
		case <-em.ctx.Done():
			return
		}
	}
}

func nameOf(t detect.Type) string {
	if n, ok := eventNames[t]; ok {
		return n
	}
	return eventName(t)
}

// emit queues e if anything listens; a full queue drops it (the event is
// still logged, stored and alerted on).
func (em *eventEmitter) emit(e detect.Event) {
	if em == nil || !em.events.ShouldEmit(nameOf(e.Type)) {
		return
	}
	select {
	case em.queue <- e:
	default:
	}
}

// eventData is the Caddy event's data: the event's fields, available to
// handlers as {event.data.type}, {event.data.user} …
func eventData(e detect.Event) map[string]any {
	d := map[string]any{
		"id": e.ID, "time": e.Time, "type": string(e.Type), "severity": e.Severity.String(),
		"site": e.Site, "user": e.User, "ip": e.IP,
	}
	if e.Country != "" {
		d["country"] = e.Country
	}
	if e.City != "" {
		d["city"] = e.City
	}
	if e.ASN != 0 {
		d["asn"] = e.ASN
	}
	if len(e.Details) > 0 {
		d["details"] = e.Details
	}
	return d
}
