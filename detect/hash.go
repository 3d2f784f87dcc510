package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
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
// revocations compare, so that every name an app treats as the same account
// shares one counter and one lock: surrounding space trimmed, then PRECIS
// UsernameCaseMapped (RFC 8265: fullwidth and halfwidth forms mapped,
// lower-cased, NFC), then NFKC and case folding, which Django-style apps
// apply to usernames. "ａｌｉｃｅ", "ALICE " and "alice" are one account.
// A name PRECIS refuses (spaces, symbols) still gets the NFKC and folding.
func NormalizeUser(user string) string {
	u := strings.TrimSpace(user)
	if isLowerASCII(u) {
		return u // the common case, already canonical: no allocation
	}
	if p, err := precis.UsernameCaseMapped.String(u); err == nil {
		u = p
	}
	return norm.NFKC.String(foldCase.String(norm.NFKC.String(u)))
}

// foldCase is Unicode default case folding ("ß" and "ss" stay distinct, as
// in PRECIS; "ſ" and "s" meet).
var foldCase = cases.Fold()

// isLowerASCII reports whether s holds only characters no mapping changes.
func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// AccountKey is the hashed key of an account, shared by counters and locks.
func AccountKey(user string) string { return HashID("account", NormalizeUser(user)) }
