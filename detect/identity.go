package detect

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Identity is what a verified session token says, computed once per token
// and then served from the verification cache.
type Identity struct {
	User    string
	UserKey string // AccountKey(User): revocation lookups hash nothing per request
	JTI     string
	Roles   []string
	// ClaimRoles holds the roles of other claims that restrict rules read.
	ClaimRoles map[string][]string
	Issued     time.Time // iat; zero when absent
	Expires    time.Time // exp

	// refusedOnce makes the first refusal of a revoked token (per process)
	// the one that records SESSION_REVOKED, not every retry.
	refusedOnce atomic.Bool
	// seen is the address the token was last used from (SeenFrom).
	seen atomic.Pointer[netip.Addr]
}

// SeenFrom records that the token was used from ip and reports whether
// that is an address other than the one it was last used from (the first
// use included). Identities are cached per token, so a session used from
// one address costs one comparison per request and no allocation.
func (id *Identity) SeenFrom(ip netip.Addr) bool {
	if last := id.seen.Load(); last != nil && *last == ip {
		return false
	}
	id.seen.Store(&ip)
	return true
}

// FirstRefusal reports true once per identity: the first time its token is
// refused as revoked.
func (id *Identity) FirstRefusal() bool { return id.refusedOnce.CompareAndSwap(false, true) }

// Holds reports whether the identity has one of roles, read from claim
// (empty: the session's roles claim).
func (id *Identity) Holds(roles []string, claim string) bool {
	have := id.Roles
	if claim != "" {
		have = id.ClaimRoles[claim]
	}
	for _, want := range roles {
		for _, h := range have {
			if h == want {
				return true
			}
		}
	}
	return false
}

// Common is the identity of a request carrying two verified tokens of the
// same user (the app may read either): the roles both grant, no token ID.
func (id *Identity) Common(o *Identity) *Identity {
	c := &Identity{User: id.User, UserKey: id.UserKey, Issued: id.Issued, Expires: id.Expires,
		Roles: intersect(id.Roles, o.Roles)}
	if id.ClaimRoles != nil {
		c.ClaimRoles = make(map[string][]string, len(id.ClaimRoles))
		for k, v := range id.ClaimRoles {
			c.ClaimRoles[k] = intersect(v, o.ClaimRoles[k])
		}
	}
	return c
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// Revocation is the decision that ends a session, as the session detector
// reports it.
type Revocation struct {
	Kind   string // revoke_user or revoke_jti
	Reason string
}
