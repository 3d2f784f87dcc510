package demoapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// jwtClaims are the claims of the demo's session tokens.
type jwtClaims struct {
	Sub   string   `json:"sub"`
	Roles []string `json:"roles"`
	JTI   string   `json:"jti"`
	IAT   int64    `json:"iat"`
	EXP   int64    `json:"exp"`
}

// signJWT returns a compact HS256 JWT carrying c.
func signJWT(secret []byte, c jwtClaims) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(c)
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
