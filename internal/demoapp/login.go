package demoapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// maxLoginBody bounds login request bodies.
const maxLoginBody = 1 << 20

// formLogin handles POST /login (urlencoded or multipart). Success
// redirects to /dashboard with a session cookie; failure redirects back to
// /login?error=1.
func (a *App) formLogin(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch mt {
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxLoginBody)
	default:
		http.Error(w, "unsupported content type: use a form", http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		status := http.StatusBadRequest
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "malformed form", status)
		return
	}
	if r.MultipartForm != nil {
		defer r.MultipartForm.RemoveAll()
	}
	user := r.PostForm.Get("username")
	if !a.check(r, user, r.PostForm.Get("password")) {
		http.Redirect(w, r, "/login?error=1", http.StatusFound)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    a.newToken(user),
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/dashboard", http.StatusFound)
}

// APILoginRequest is the body POST /api/login expects; the user name lives
// at the dotted path user.name.
type APILoginRequest struct {
	User struct {
		Name string `json:"name"`
	} `json:"user"`
	Password string `json:"password"`
}

// APILoginResponse is the body POST /api/login answers with.
type APILoginResponse struct {
	OK    bool   `json:"ok"`
	Token string `json:"token,omitempty"`
	Error string `json:"error,omitempty"`
}

// apiLogin handles POST /api/login: 200 with a token, 401 on bad
// credentials, 400 on a malformed body.
func (a *App) apiLogin(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, APILoginResponse{Error: "body too large"})
		return
	}
	var req APILoginRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.Decode(new(json.RawMessage)) != io.EOF {
		writeJSON(w, http.StatusBadRequest, APILoginResponse{Error: "malformed JSON"})
		return
	}
	if !a.check(r, req.User.Name, req.Password) {
		writeJSON(w, http.StatusUnauthorized, APILoginResponse{})
		return
	}
	writeJSON(w, http.StatusOK, APILoginResponse{OK: true, Token: a.newToken(req.User.Name)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
