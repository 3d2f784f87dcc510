// Package demoapp is a small web application that stands behind the Vigil
// gateway in the one-command demo (cmd/vigil-demo) and in end-to-end tests.
//
// It has a fixed set of in-memory users, an HTML form login, a JSON login
// API, a couple of "protected" pages that echo what the gateway passed
// upstream, and an echo endpoint. It does no authorization of its own: the
// point is to show what reaches the app once Vigil has made its decisions.
package demoapp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// SessionCookie is the cookie a successful form login sets.
const SessionCookie = "demo_session"

// users are the fixed demo accounts (name → password).
var users = map[string]string{
	"alice": "wonderland",
	"bob":   "builder",
	"carol": "secret123",
}

// Users returns a copy of the demo accounts (name → password), for demos
// and tests.
func Users() map[string]string {
	m := make(map[string]string, len(users))
	for u, p := range users {
		m[u] = p
	}
	return m
}

// roles are the roles put into JWTs when Options.JWTSecret is set.
var roles = map[string][]string{
	"alice": {"admin", "user"},
	"bob":   {"user"},
	"carol": {"user"},
}

// Options configure an App. The zero value is a working app.
type Options struct {
	// LoginHook, when set, is called once for every login attempt that
	// reached the app with parseable credentials (form or JSON), with the
	// submitted user name and whether the password matched. It is called
	// from the request goroutine and must be safe for concurrent use.
	LoginHook func(user string, ok bool)

	// JWTSecret, when set, makes logins issue HS256 JWTs (claims sub,
	// roles, jti, iat, exp) instead of opaque random tokens: both as the
	// /api/login token and as the demo_session cookie value. This lets a
	// gateway verify sessions with `session jwt { key hs256 <secret> }`.
	JWTSecret []byte

	// TokenTTL is the lifetime of issued JWTs; default 1h.
	TokenTTL time.Duration

	// Logger, when set, receives one line per login attempt (user and
	// outcome, never the password). Nil means silent.
	Logger *slog.Logger
}

// App is the demo application. It implements http.Handler.
type App struct {
	opts  Options
	users map[string][]byte
	mux   *http.ServeMux
	hits  atomic.Int64
}

// New returns a ready App.
func New(opts Options) *App {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	a := &App{opts: opts, users: make(map[string][]byte, len(users))}
	for u, p := range users {
		a.users[u] = []byte(p)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", a.home)
	m.HandleFunc("GET /login", a.home)
	m.HandleFunc("POST /login", a.formLogin)
	m.HandleFunc("POST /api/login", a.apiLogin)
	m.HandleFunc("GET /dashboard", a.dashboard)
	m.HandleFunc("GET /api/me", a.me)
	m.HandleFunc("GET /echo", a.echoGet)
	m.HandleFunc("POST /echo", a.echoPost)
	m.HandleFunc("GET /healthz", a.healthz)
	a.mux = m
	return a
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// Hits reports how many login attempts (POST /login and POST /api/login,
// well-formed or not) have reached the app. Tests use it to prove that a
// gateway refused a request before the upstream saw it.
func (a *App) Hits() int64 { return a.hits.Load() }

// dummy is compared against for unknown users so that a miss costs about
// the same as a wrong password.
var dummy = []byte("not-a-real-password-0000")

// check verifies a user's password in constant time (for a given length),
// reports the outcome to the hook and the logger, and never logs the
// password itself.
func (a *App) check(r *http.Request, user, password string) bool {
	want, known := a.users[user]
	if !known {
		want = dummy
	}
	ok := subtle.ConstantTimeCompare([]byte(password), want) == 1 && known
	if a.opts.Logger != nil {
		a.opts.Logger.Info("login attempt", "path", r.URL.Path, "user", user, "ok", ok, "remote_addr", r.RemoteAddr)
	}
	if a.opts.LoginHook != nil {
		a.opts.LoginHook(user, ok)
	}
	return ok
}

// newToken returns a session token for user: a JWT when a secret is
// configured, otherwise 32 random bytes in hex.
func (a *App) newToken(user string) string {
	if len(a.opts.JWTSecret) > 0 {
		now := time.Now()
		return signJWT(a.opts.JWTSecret, jwtClaims{Sub: user, Roles: roles[user], JTI: randomHex(16), IAT: now.Unix(), EXP: now.Add(a.opts.TokenTTL).Unix()})
	}
	return randomHex(32)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics instead since Go 1.24)
	return hex.EncodeToString(b)
}
