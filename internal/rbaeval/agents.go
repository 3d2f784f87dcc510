package rbaeval

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// deviceKind is the class of one of a user's devices.
type deviceKind uint8

const (
	desktop deviceKind = iota // a desktop or a laptop
	phone
	tablet
)

// agentSpec is one browser on one OS, whose User-Agent follows the
// browser's release cycle: Chrome, Edge and Firefox ship a major version
// every four weeks, Safari and Samsung Internet about once a year.
type agentSpec struct {
	device deviceKind
	share  float64 // among devices of its kind
	ua     func(major int) string
	major  func(t time.Time) int
}

var cycleOrigin = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)

func fourWeekly(base int) func(time.Time) int {
	return func(t time.Time) int { return base + int(t.Sub(cycleOrigin)/(28*24*time.Hour)) }
}

func yearly(base int, month time.Month) func(time.Time) int {
	return func(t time.Time) int {
		n := base + t.Year() - 2024
		if t.Month() < month {
			n--
		}
		return n
	}
}

var agentSpecs = []agentSpec{
	{desktop, 36, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", m)
	}, fourWeekly(120)},
	{desktop, 12, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.2478.80", m, m)
	}, fourWeekly(120)},
	{desktop, 6, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%d.0) Gecko/20100101 Firefox/%d.0", m, m)
	}, fourWeekly(121)},
	{desktop, 14, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.1 Safari/605.1.15", m)
	}, yearly(17, time.September)},
	{desktop, 10, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", m)
	}, fourWeekly(120)},
	{desktop, 3, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", m, m)
	}, fourWeekly(121)},
	{desktop, 2, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", m)
	}, fourWeekly(120)},
	{phone, 50, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.4 Mobile/15E148 Safari/604.1", m, m)
	}, yearly(17, time.September)},
	{phone, 44, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android 14; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Mobile Safari/537.36", m)
	}, fourWeekly(120)},
	{phone, 6, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/%d.0 Chrome/115.0.0.0 Mobile Safari/537.36", m)
	}, yearly(23, time.March)},
	{tablet, 70, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (iPad; CPU OS %d_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.4 Mobile/15E148 Safari/604.1", m, m)
	}, yearly(17, time.September)},
	{tablet, 30, func(m int) string {
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", m)
	}, fourWeekly(120)},
}

// pickAgent returns a browser for a device of kind, by market share.
func pickAgent(r *rand.Rand, kind deviceKind) *agentSpec {
	var idx []int
	var w []float64
	for i := range agentSpecs {
		if agentSpecs[i].device == kind {
			idx, w = append(idx, i), append(w, agentSpecs[i].share)
		}
	}
	return &agentSpecs[idx[pickWeighted(r, w)]]
}

// device is one of a user's devices: a browser that updates itself, some
// users a release late.
type device struct {
	spec *agentSpec
	lag  int // releases behind
}

func (d *device) major(t time.Time) int { return d.spec.major(t) - d.lag }

func (d *device) userAgent(t time.Time) string { return d.spec.ua(d.major(t)) }

// scriptAgents are what naive attackers send: HTTP libraries, attack
// tools, headless browsers, or nothing.
var scriptAgents = []string{
	"curl/8.5.0",
	"python-requests/2.31.0",
	"Go-http-client/1.1",
	"okhttp/4.12.0",
	"Mozilla/5.0 (Hydra)",
	"Java/17.0.9",
	"axios/1.6.7",
	"Python/3.11 aiohttp/3.9.3",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"",
}
