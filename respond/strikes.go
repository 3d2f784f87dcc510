package respond

import "time"

// strikeBook counts a target's earlier bans in this process: the whole
// strike memory of the memory store, and the Redis store's stand-in while
// Redis is unreachable. The caller holds the lock that guards it.
type strikeBook map[string]strikeRecord

type strikeRecord struct {
	n       int
	expires time.Time
}

// maxStrikeRecords bounds the book; expired records are swept beyond it.
const maxStrikeRecords = 4096

// next records one more ban for key and returns its strike number: 1 unless
// an earlier ban is still within StrikeMemory(max).
func (b strikeBook) next(key string, now time.Time, max time.Duration) int {
	s := b[key]
	if !now.Before(s.expires) {
		s.n = 0
	}
	s.n++
	s.expires = now.Add(StrikeMemory(max))
	b[key] = s
	if len(b) > maxStrikeRecords {
		for k, r := range b {
			if !now.Before(r.expires) {
				delete(b, k)
			}
		}
	}
	return s.n
}
