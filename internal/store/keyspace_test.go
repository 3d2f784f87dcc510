package store

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestKeyspaceSlots: keys one script uses together must hash to one
// Cluster slot, with and without a tag in the operator's prefix.
func TestKeyspaceSlots(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"})
	defer client.Close()
	for _, prefix := range []string{"vigil:", "app{vigil}:", ""} {
		ks := NewKeyspace(client, prefix)
		due, jobs := ks.Tagged("outbox", "abc", "due"), ks.Tagged("outbox", "abc", "jobs")
		if slot(due) != slot(jobs) || due == jobs {
			t.Errorf("prefix %q: %s and %s in slots %d, %d", prefix, due, jobs, slot(due), slot(jobs))
		}
		hash := ks.Key("decisions")
		strike := ks.Beside(hash, "strike", "lock:123")
		if slot(hash) != slot(strike) {
			t.Errorf("prefix %q: %s and %s in slots %d, %d", prefix, hash, strike, slot(hash), slot(strike))
		}
		if ks.Tagged("outbox", "abc", "due") == ks.Tagged("outbox", "abd", "due") {
			t.Errorf("prefix %q: distinct tags give one name", prefix)
		}
	}
	if got := NewKeyspace(client, "vigil:").Tagged("outbox", "abc", "due"); got != "vigil:outbox:{abc}:due" {
		t.Errorf("outbox key %q", got)
	}
}

// slot is Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, or of
// the whole key without one, modulo 16384.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
