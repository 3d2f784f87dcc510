// Package store holds Vigil's state implementations: login counters,
// distinct-member windows, sum windows and per-subject profiles, each in
// memory, in Redis and as a fallback that keeps a single instance working
// while Redis is away. The interfaces they implement are defined by their
// users in detect. One Keyspace per config names every Redis key.
package store

import (
	"strings"

	"github.com/redis/go-redis/v9"
)

// Keyspace is the one Redis client of a config and the one place Vigil's
// Redis keys are named: every key starts with Prefix, and keys that one
// script touches together share a Cluster hash tag.
type Keyspace struct {
	Client redis.UniversalClient
	Prefix string
	// Cluster is true when Client talks Redis Cluster: keys of different
	// subjects live in different slots, so a script may touch the keys of
	// one hash tag only.
	Cluster bool
}

// NewKeyspace describes client's keys under prefix (DefaultRedisPrefix when
// empty).
func NewKeyspace(client redis.UniversalClient, prefix string) Keyspace {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	_, cluster := client.(*redis.ClusterClient)
	return Keyspace{Client: client, Prefix: prefix, Cluster: cluster}
}

// Key is prefix + the parts joined by ':'.
func (k Keyspace) Key(parts ...string) string {
	// one allocation: keys are built on every login
	n := len(k.Prefix) + max(len(parts)-1, 0)
	for _, p := range parts {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(k.Prefix)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Tagged names a key of family kind whose Cluster hash tag is tag, so that
// every key with the same tag lands in one slot and one script may use them
// together: "<prefix><kind>:{<tag>}:<parts>". Keys are tagged in standalone
// and Sentinel mode too, so a key's name does not depend on the topology. A
// prefix that already holds a hash tag places every key itself (Redis
// hashes the first {…} only): the tag is then a plain part of the name.
func (k Keyspace) Tagged(kind, tag string, parts ...string) string {
	rest := ""
	if len(parts) > 0 {
		rest = ":" + strings.Join(parts, ":")
	}
	if k.prefixTagged() {
		return k.Prefix + kind + ":" + tag + rest
	}
	return k.Prefix + kind + ":{" + tag + "}" + rest
}

// Beside names a key that lands in the same Cluster slot as key (a name
// this keyspace built without a tag), so that one script may use both.
func (k Keyspace) Beside(key string, parts ...string) string {
	if k.prefixTagged() {
		return k.Key(parts...)
	}
	return k.Prefix + strings.Join(parts, ":") + ":{" + key + "}"
}

// prefixTagged reports whether the prefix carries a non-empty hash tag.
func (k Keyspace) prefixTagged() bool {
	i := strings.IndexByte(k.Prefix, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(k.Prefix[i+1:], '}')
	return j > 0
}
