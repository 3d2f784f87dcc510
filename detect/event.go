// Package detect holds Vigil's event model, the per-request context
// (Request, and Facts, its immutable snapshot and the one event builder),
// the detector seams by stage (Check, Observer, ResponseTap), the Pipeline
// that runs them, and the interfaces of the state detectors count with.
// The detectors themselves live in sub-packages, one per family (login,
// probes, session, access). It never imports Caddy.
package detect

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Type names what an event reports. The names are part of the public contract:
// alert receivers, dashboards and the admin API filter on them.
type Type string

const (
	SuccessfulLogin     Type = "SUCCESSFUL_LOGIN"
	FailedLogin         Type = "FAILED_LOGIN"
	AccountLocked       Type = "ACCOUNT_LOCKED"
	IPBlocked           Type = "IP_BLOCKED"
	UnusualLocation     Type = "UNUSUAL_LOCATION"
	ImpossibleTravel    Type = "IMPOSSIBLE_TRAVEL"
	CredentialStuffing  Type = "CREDENTIAL_STUFFING"
	DataAccessAnomaly   Type = "DATA_ACCESS_ANOMALY"
	BulkExport          Type = "BULK_EXPORT"
	SensitiveDataAccess Type = "SENSITIVE_DATA_ACCESS"
	PermissionViolation Type = "PERMISSION_VIOLATION"
	SystemIntrusion     Type = "SYSTEM_INTRUSION"
	SessionRevoked      Type = "SESSION_REVOKED"
	AdminAction         Type = "ADMIN_ACTION"
	// SuspiciousLogin: a successful login whose risk score reached the
	// site's risk alert threshold.
	SuspiciousLogin Type = "SUSPICIOUS_LOGIN"
	// PasswordSpray: failures spread over many sources and many accounts.
	PasswordSpray Type = "PASSWORD_SPRAY"
	// DistributedBruteForce: one account tried from many sources.
	DistributedBruteForce Type = "DISTRIBUTED_BRUTE_FORCE"
	// SessionAnomaly: a verified session used from a country or network
	// other than the one it started from.
	SessionAnomaly Type = "SESSION_ANOMALY"
)

// Types lists every event type, in documentation order.
var Types = []Type{
	SuccessfulLogin, FailedLogin, AccountLocked, IPBlocked, UnusualLocation,
	ImpossibleTravel, CredentialStuffing, DataAccessAnomaly, BulkExport,
	SensitiveDataAccess, PermissionViolation, SystemIntrusion, SessionRevoked,
	AdminAction, SuspiciousLogin, PasswordSpray, DistributedBruteForce,
	SessionAnomaly,
}

// ParseType accepts an event type name in any letter case.
func ParseType(s string) (Type, error) {
	t := Type(strings.ToUpper(strings.TrimSpace(s)))
	for _, known := range Types {
		if t == known {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown event type %q", s)
}

// Severity orders events by how urgently a human should look at them.
type Severity int

const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

var severityNames = [...]string{"", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (s Severity) String() string {
	if s < Low || s > Critical {
		return "UNKNOWN"
	}
	return severityNames[s]
}

// ParseSeverity accepts LOW, MEDIUM, HIGH or CRITICAL in any letter case.
func ParseSeverity(s string) (Severity, error) {
	up := strings.ToUpper(strings.TrimSpace(s))
	for i := Low; i <= Critical; i++ {
		if severityNames[i] == up {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want LOW, MEDIUM, HIGH or CRITICAL)", s)
}

// MarshalText writes the severity as its name, so JSON carries "HIGH", not 3.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// DefaultSeverity is the severity of an event type unless the detector has
// stronger evidence.
func DefaultSeverity(t Type) Severity {
	switch t {
	case SuccessfulLogin, FailedLogin, SensitiveDataAccess, AdminAction:
		return Low
	case AccountLocked, IPBlocked, UnusualLocation, PermissionViolation, SessionRevoked, SuspiciousLogin:
		return Medium
	default:
		return High
	}
}

// Event is one security-relevant fact: a detection or an enforcement action.
// User and IP come from verified sources only (a verified session, the login
// form, Caddy's client_ip); Details never holds a password.
type Event struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Type     Type      `json:"type"`
	Severity Severity  `json:"severity"`
	Site     string    `json:"site,omitempty"`
	User     string    `json:"user,omitempty"`
	IP       string    `json:"ip,omitempty"`
	Country  string    `json:"country,omitempty"`
	City     string    `json:"city,omitempty"`
	ASN      uint      `json:"asn,omitempty"`
	Details  Details   `json:"details,omitempty"`
}

// Details are an event's type-specific facts: a JSON object whose values
// are strings, numbers, booleans, lists of strings or nested objects of the
// same. Keys are snake_case.
type Details map[string]any

// Canonical is the event's canonical JSON, the form the audit chain hashes:
// object keys sorted (encoding/json sorts map keys), no HTML escaping, no
// insignificant whitespace, time in RFC 3339 with nanoseconds in UTC. An
// event decoded from its JSON has the same canonical form (numbers read
// back as float64 print as they were written, up to 2^53).
func (e Event) Canonical() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	e.Time = e.Time.UTC()
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", e.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// NewEvent returns an event of type t at the type's default severity, with a
// fresh random ID.
func NewEvent(t Type, now time.Time) Event {
	return Event{ID: NewID(), Time: now.UTC(), Type: t, Severity: DefaultSeverity(t)}
}

// NewID returns 16 random bytes in hex: unique enough to deduplicate on.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
