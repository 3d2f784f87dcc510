package caddymodule

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// maxBackground bounds the response observations in flight per handler:
// counting a 4xx or an upstream refusal may wait on Redis, which must never
// hold a request nor pile up goroutines when Redis is slow.
const maxBackground = 256

// backgroundPool bounds and tracks a handler's background work.
type backgroundPool struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// background runs fn off the request path; when too many are already
// running it drops fn and counts the drop.
func (h *Handler) background(fn func()) {
	select {
	case h.bg.slots <- struct{}{}:
		h.bg.wg.Add(1)
		go func() {
			defer func() {
				<-h.bg.slots
				h.bg.wg.Done()
			}()
			fn()
		}()
	default:
		backgroundDropped.Inc()
	}
}

// waitBackground waits for the observations in flight (tests).
func (h *Handler) waitBackground() { h.bg.wg.Wait() }

// reqFacts is what background work needs of a request, copied while the
// request is still being served.
type reqFacts struct {
	site, method, path, query, agent string
	ip                               netip.Addr
	user, userKey                    string
}

func (h *Handler) factsOf(r *http.Request, id *identity, ip netip.Addr) reqFacts {
	f := reqFacts{site: h.site(r), method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
		agent: r.Header.Get("User-Agent"), ip: ip}
	if id != nil {
		f.user, f.userKey = id.user, id.userKey
	}
	return f
}

// details are the request facts every finding about a request carries,
// shortened so that no client can make an event large.
func (f reqFacts) details() map[string]any {
	d := map[string]any{"method": detect.DisplayUser(f.method), "path": detect.DisplayUser(f.path)}
	if f.query != "" {
		d["query"] = detect.DisplayUser(f.query)
	}
	if f.agent != "" {
		d["user_agent"] = detect.DisplayUser(f.agent)
	}
	return d
}

// event is an event of type t about the request, with its details.
func (f reqFacts) event(t detect.Type, now time.Time) detect.Event {
	e := detect.NewEvent(t, now)
	e.Site = f.site
	e.User = detect.DisplayUser(f.user)
	if f.ip.IsValid() {
		e.IP = f.ip.String()
	}
	e.Details = f.details()
	return e
}

// ipKey is the hashed key of the request's address.
func (f reqFacts) ipKey() string { return detect.HashID("ip", clientNet(f.ip)) }

// pathMember is the hashed, case-folded path, a member of the probe window.
func pathMember(p string) string { return detect.HashID("path", strings.ToLower(p)) }
