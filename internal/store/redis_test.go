package store

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisOptions(t *testing.T) {
	bad := []RedisOptions{
		{},
		{URL: "http://example.com"},
		{URL: "redis://localhost:6379", Addrs: []string{"localhost:6379"}},
		{Addrs: []string{"a:1", "b:2"}},
		{Addrs: []string{"a:1"}, Cluster: true, SentinelMaster: "m"},
		{Addrs: []string{"no-port"}},
		{Addrs: []string{"a:1"}, Cluster: true, DB: 2},
		{URL: "redis://localhost:6379", Cluster: true},
	}
	for _, o := range bad {
		if c, err := o.Client(); err == nil {
			c.Close()
			t.Errorf("%+v: no error", o)
		}
	}
	c, err := RedisOptions{URL: "rediss://user:pw@127.0.0.1:6380/3"}.Client()
	if err != nil {
		t.Fatal(err)
	}
	opt := c.(*redis.Client).Options()
	if opt.TLSConfig == nil || opt.TLSConfig.MinVersion != tls.VersionTLS12 || opt.DB != 3 ||
		opt.ReadTimeout != 500*time.Millisecond || opt.DialTimeout != 2*time.Second {
		t.Errorf("rediss URL options: %+v", opt)
	}
	c.Close()
	c, _ = RedisOptions{Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, Cluster: true, TLS: true}.Client()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Errorf("cluster options gave %T", c)
	}
	c.Close()
	c, _ = RedisOptions{Addrs: []string{"127.0.0.1:26379"}, SentinelMaster: "mymaster"}.Client()
	if _, ok := c.(*redis.Client); !ok {
		t.Errorf("sentinel options gave %T", c)
	}
	c.Close()
}
