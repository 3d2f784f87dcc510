package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/geoip"
)

// GeoIPConfig names the MaxMind DB files logins and events are located
// with. Vigil ships no database: see the README's GeoIP section for
// GeoLite2 and geoipupdate.
type GeoIPConfig struct {
	// City is a City or Country database (GeoLite2-City, GeoIP2-City,
	// GeoLite2-Country, or a compatible one such as DB-IP City Lite).
	City string `json:"city"`
	// ASN is an optional ASN database (GeoLite2-ASN, GeoIP2-ISP), for the
	// network (AS number and organisation) of an address.
	ASN string `json:"asn,omitempty"`
	// Poll is how often the files are checked for a new version
	// (default 1m). A changed file is loaded whole and checked before it
	// replaces the old one; a bad file keeps the old one in service.
	Poll caddy.Duration `json:"poll,omitempty"`
}

var geoipReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "vigil", Name: "geoip_reloads_total",
	Help: "Reloads of a GeoIP database file that changed on disk, by result (ok, error: the old database stays in service).",
}, []string{"result"})

func init() { addCollectors(geoipReloads) }

// geoipPool shares one loaded set of databases between the configs that
// name the same files, so a reload does not read them again; the watcher
// lives as long as the set.
var geoipPool = caddy.NewUsagePool()

type pooledLocator struct {
	*geoip.Locator
	stop context.CancelFunc
}

func (p *pooledLocator) Destruct() error {
	p.stop()
	return p.Close()
}

// provisionGeoIP loads the databases (or shares them with the running
// config) and gives them to the responder for events.
func (a *App) provisionGeoIP() error {
	g := a.GeoIP
	if g == nil {
		return nil
	}
	if g.City == "" {
		return fmt.Errorf("vigil geoip: a City or Country database file is required")
	}
	key, _ := json.Marshal(g)
	logger := a.logger
	val, _, err := geoipPool.LoadOrNew(string(key), func() (caddy.Destructor, error) {
		loc, err := geoip.Open(g.City, g.ASN)
		if err != nil {
			return nil, err
		}
		ctx, stop := context.WithCancel(context.Background())
		go loc.Watch(ctx, time.Duration(g.pollInterval()), func(err error) {
			if err != nil {
				geoipReloads.WithLabelValues("error").Inc()
				logger.Error("reloading a GeoIP database; the previous one stays in service", zap.Error(err))
				return
			}
			geoipReloads.WithLabelValues("ok").Inc()
			logger.Info("GeoIP database reloaded", zap.Stringer("databases", loc))
		})
		return &pooledLocator{Locator: loc, stop: stop}, nil
	})
	if err != nil {
		return fmt.Errorf("vigil geoip: %w", err)
	}
	a.geoKey = string(key)
	a.locator = val.(*pooledLocator).Locator
	a.logger.Info("GeoIP databases loaded", zap.Stringer("databases", a.locator))
	return nil
}

func (g *GeoIPConfig) pollInterval() (d caddy.Duration) {
	if g.Poll > 0 {
		return g.Poll
	}
	return caddy.Duration(geoip.DefaultPollInterval)
}

// cleanupGeoIP releases this config's hold on the databases.
func (a *App) cleanupGeoIP() error {
	if a.geoKey == "" {
		return nil
	}
	_, err := geoipPool.Delete(a.geoKey)
	return err
}

// parseGeoIP reads "geoip <city.mmdb> [asn <asn.mmdb>] [{ poll <dur> }]".
func parseGeoIP(d *caddyfile.Dispenser) (*GeoIPConfig, error) {
	g := &GeoIPConfig{}
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	g.City = d.Val()
	if d.NextArg() {
		if d.Val() != "asn" || !d.NextArg() {
			return nil, d.Errf("geoip: want geoip <City-or-Country.mmdb> [asn <ASN.mmdb>]")
		}
		g.ASN = d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	for d.NextBlock(1) {
		switch d.Val() {
		case "poll":
			dur, err := oneDuration(d)
			if err != nil {
				return nil, err
			}
			g.Poll = dur
		default:
			return nil, d.Errf("geoip: unknown option %q", d.Val())
		}
	}
	return g, nil
}
