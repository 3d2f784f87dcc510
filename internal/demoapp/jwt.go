package demoapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// signJWT returns a compact HS256 JWT for user.
func signJWT(secret []byte, user string, roles []string, jti string, now time.Time, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(struct {
		Sub   string   `json:"sub"`
		Roles []string `json:"roles"`
		JTI   string   `json:"jti"`
		IAT   int64    `json:"iat"`
		EXP   int64    `json:"exp"`
	}{user, roles, jti, now.Unix(), now.Add(ttl).Unix()})
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
