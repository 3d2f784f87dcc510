package caddymodule

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// redisLogOnce routes go-redis's own messages (dial failures while Redis is
// down…) into Caddy's structured log instead of bare lines on stderr. The
// go-redis logger is process-wide, so it is set once.
var redisLogOnce sync.Once

type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("vigil.redis").Warn(fmt.Sprintf(format, v...))
}

func routeRedisLogs() {
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}
