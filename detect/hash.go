package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// HashID turns an identifier that came from a client (a username, an IP, a
// token ID) into a fixed-length key fragment, so that no user input ever
// becomes part of a Redis key or command. kind separates namespaces: the
// account "10.0.0.1" and the IP 10.0.0.1 hash differently.
func HashID(kind, value string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(value))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// NormalizeUser is the form of a username that counters, locks and
// revocations compare: surrounding space trimmed and lower-cased, so that
// "Alice " and "alice" cannot dodge one another's lockout.
func NormalizeUser(user string) string {
	return strings.ToLower(strings.TrimSpace(user))
}

// AccountKey is the hashed key of an account, shared by counters and locks.
func AccountKey(user string) string { return HashID("account", NormalizeUser(user)) }
