package limitstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// BoundRedis bounds a limiter's Redis client options by timeout: no retries (a retry
// only doubles a request's wait on a hung Redis; the breaker decides when to try
// again), and every dial, read, write and pool wait within timeout.
func BoundRedis(o *redis.Options, timeout time.Duration) {
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.DialTimeout = timeout
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.PoolTimeout = timeout
	o.ContextTimeoutEnabled = true
}

// Ping is a readiness check of a Redis client: a PING answered within timeout.
func Ping(c *redis.Client, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return c.Ping(ctx).Err()
	}
}

// RedisLogger adapts log to go-redis's logger (redis.SetLogger), which otherwise
// writes plain "redis: … pool.go:770" lines to stderr. Its lines are ERRORs with code
// "unavailable", so a log deduplicator (logdedupe) keeps one per interval.
func RedisLogger(log *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return redisLogger{log}
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.ErrorContext(ctx, "redis client", "code", "unavailable", "detail", fmt.Sprintf(format, v...))
}
