package demoapp

import (
	"html/template"
	"io"
	"net/http"
)

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Vigil demo app</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}
label{display:block;margin:.5em 0}.error{color:#b00}</style></head>
<body>
<h1>Demo app</h1>
<p>This is a deliberately simple application standing behind the Vigil
security gateway. It knows three users (alice, bob, carol) and does no
rate limiting of its own: brute force, credential stuffing, lockouts and IP
blocks are all handled by the gateway in front of it.</p>
<p>Try a few wrong passwords for <code>alice</code>: after five failures the
gateway locks the account and answers <code>429</code> without the app ever
seeing the request.</p>
{{if .Error}}<p class="error">Wrong user name or password.</p>{{end}}
<form method="post" action="/login">
<label>User name <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<p>Also: <code>POST /api/login</code> with
<code>{"user":{"name":"alice"},"password":"…"}</code>,
<a href="/dashboard">/dashboard</a>, <a href="/api/me">/api/me</a>,
<a href="/echo">/echo</a>, <a href="/healthz">/healthz</a>.</p>
</body>
</html>
`))

// home serves GET / and GET /login: the login form.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	homePage.Execute(w, struct{ Error bool }{r.URL.Path == "/login" && r.URL.Query().Get("error") != ""})
}

// dashboard serves GET /dashboard. It echoes X-Vigil-User, the user the
// gateway verified (empty for anonymous requests).
func (a *App) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "Dashboard\nX-Vigil-User: "+r.Header.Get("X-Vigil-User")+"\n")
}

// Me is the body of GET /api/me.
type Me struct {
	User string `json:"user"` // the X-Vigil-User request header
}

func (a *App) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Me{User: r.Header.Get("X-Vigil-User")})
}

// Echo is the body of GET /echo: what the app saw of the request.
type Echo struct {
	Method        string `json:"method"`
	Path          string `json:"path"`
	XForwardedFor string `json:"x_forwarded_for"`
	XVigilUser    string `json:"x_vigil_user"`
	RemoteAddr    string `json:"remote_addr"`
}

func (a *App) echoGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Echo{
		Method:        r.Method,
		Path:          r.URL.Path,
		XForwardedFor: r.Header.Get("X-Forwarded-For"),
		XVigilUser:    r.Header.Get("X-Vigil-User"),
		RemoteAddr:    r.RemoteAddr,
	})
}

// maxEchoBody bounds POST /echo bodies.
const maxEchoBody = 8 << 20

// echoPost answers POST /echo with the request body, byte for byte. The
// body is read fully before answering (HTTP/1 handlers may not read the
// request after writing the response).
func (a *App) echoPost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(body)
}

func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok")
}
