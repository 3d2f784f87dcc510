package store

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions say how to reach Redis: a URL (redis://, rediss://,
// unix://), or addresses of a standalone server, a cluster or Sentinels.
type RedisOptions struct {
	URL            string
	Addrs          []string
	Cluster        bool   // Addrs are cluster nodes
	SentinelMaster string // Addrs are Sentinels watching this master
	Username       string
	Password       string
	DB             int
	TLS            bool
	// TLSCA is a PEM file of the CAs that sign the server's certificate
	// (default: the system pool); TLSCert and TLSKey are a client
	// certificate and its key in PEM files, for servers that require one
	// (tls-auth-clients); TLSServerName is the name the server's
	// certificate must carry (default: the host dialled). Any of them turns
	// TLS on.
	TLSCA, TLSCert, TLSKey, TLSServerName string
	Prefix                                string // key prefix; default "vigil:"
}

// DefaultRedisPrefix starts every key Vigil writes.
const DefaultRedisPrefix = "vigil:"

// Timeouts are short on purpose: the login path waits for Redis, and a dead
// server must fail fast into the local fallback rather than hold requests.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 500 * time.Millisecond
	// One retry covers a pooled connection the server closed (a restart)
	// without tripling the wait when Redis is really gone, and bounds the
	// double counting a retried script can cause after a lost reply.
	redisMaxRetries = 1
	// go-redis dials up to five times per connection by default, which would
	// make one operation on a dead server wait five dial timeouts; one dial
	// per attempt keeps the bound at DialTimeout. (After PoolSize failed
	// dials go-redis fails at once and probes in the background.)
	redisDialAttempts = 1
)

// KeyPrefix is the prefix in effect.
func (o RedisOptions) KeyPrefix() string {
	if o.Prefix == "" {
		return DefaultRedisPrefix
	}
	return o.Prefix
}

// Client builds the go-redis client the options describe. It does not
// connect: an unreachable server is not an error here.
func (o RedisOptions) Client() (redis.UniversalClient, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	tlsConf, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	switch {
	case o.URL != "":
		opt, err := redis.ParseURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redis: invalid URL: %w", err)
		}
		if o.Username != "" {
			opt.Username = o.Username
		}
		if o.Password != "" {
			opt.Password = o.Password
		}
		if o.DB != 0 {
			opt.DB = o.DB
		}
		switch {
		case opt.TLSConfig != nil && tlsConf != nil: // rediss:// with our files
			tlsConf.ServerName = orString(tlsConf.ServerName, opt.TLSConfig.ServerName)
			opt.TLSConfig = tlsConf
		case opt.TLSConfig != nil: // rediss://
			if opt.TLSConfig.MinVersion < tls.VersionTLS12 {
				opt.TLSConfig.MinVersion = tls.VersionTLS12
			}
		case tlsConf != nil:
			if host, _, err := net.SplitHostPort(opt.Addr); err == nil && tlsConf.ServerName == "" {
				tlsConf.ServerName = host
			}
			opt.TLSConfig = tlsConf
		}
		// a URL may set its own timeouts (dial_timeout=…); keep those
		opt.DialTimeout = orDefault(opt.DialTimeout, redisDialTimeout)
		opt.ReadTimeout = orDefault(opt.ReadTimeout, redisIOTimeout)
		opt.WriteTimeout = orDefault(opt.WriteTimeout, redisIOTimeout)
		if opt.MaxRetries == 0 {
			opt.MaxRetries = redisMaxRetries
		}
		if opt.DialerRetries == 0 {
			opt.DialerRetries = redisDialAttempts
		}
		return redis.NewClient(opt), nil
	case o.Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.Addrs, Username: o.Username, Password: o.Password, TLSConfig: tlsConf,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisMaxRetries, DialerRetries: redisDialAttempts,
			// a killed master answers nothing, so no MOVED tells the client
			// its replica took over: re-read the slot map every second
			// rather than go-redis's default minute, or Vigil stays on its
			// local fallback for that master's slots for up to 60 s
			ClusterStateReloadInterval: time.Second,
		}), nil
	case o.SentinelMaster != "":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.SentinelMaster, SentinelAddrs: o.Addrs,
			Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: tlsConf,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisMaxRetries, DialerRetries: redisDialAttempts,
		}), nil
	default:
		if tlsConf != nil && tlsConf.ServerName == "" {
			if host, _, err := net.SplitHostPort(o.Addrs[0]); err == nil {
				tlsConf.ServerName = host
			}
		}
		return redis.NewClient(&redis.Options{
			Addr: o.Addrs[0], Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: tlsConf,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisMaxRetries, DialerRetries: redisDialAttempts,
		}), nil
	}
}

func (o RedisOptions) validate() error {
	switch {
	case o.URL != "" && len(o.Addrs) > 0:
		return errors.New("redis: give either a URL or addrs, not both")
	case o.URL == "" && len(o.Addrs) == 0:
		return errors.New("redis: a URL or at least one address is required")
	case o.Cluster && o.SentinelMaster != "":
		return errors.New("redis: cluster and sentinel exclude each other")
	case o.URL != "" && (o.Cluster || o.SentinelMaster != ""):
		return errors.New("redis: cluster and sentinel take addrs, not a URL")
	case o.Cluster && o.DB != 0:
		return errors.New("redis: a cluster has no database number")
	case len(o.Addrs) > 1 && !o.Cluster && o.SentinelMaster == "":
		return errors.New("redis: several addrs need cluster or sentinel")
	case o.DB < 0:
		return errors.New("redis: db must not be negative")
	}
	for _, a := range o.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("redis: invalid address %q (want host:port): %w", a, err)
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Open builds the client the options describe and its keyspace. It does
// not connect: an unreachable server is not an error here.
func (o RedisOptions) Open() (Keyspace, error) {
	client, err := o.Client()
	if err != nil {
		return Keyspace{}, err
	}
	return NewKeyspace(client, o.KeyPrefix()), nil
}
