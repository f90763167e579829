package gmail_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGoogle plays Google's OAuth2 token endpoint (POST /token) and the Gmail API
// (/gmail/v1/users/me/...) as the Go SDK talks to them: it checks every request as Google
// does (method, path, form or JSON fields, query parameters, bearer token) and answers
// with Google's documented bodies and error objects.
type fakeGoogle struct {
	t   testing.TB
	srv *httptest.Server

	mu            sync.Mutex
	clients       map[string]string // OAuth client id → secret
	refreshTokens map[string]bool   // refresh tokens still granted
	accessTokens  map[string]bool   // access tokens issued and not revoked
	expiresIn     int               // seconds, in token responses
	issued        int
	tokenHits     int          // every request to the token endpoint
	tokenForms    []url.Values // the token requests that passed the checks
	apiRequests   []apiRequest // the API requests that passed the checks
	sent          []*sentMessage
	override      http.HandlerFunc // answers API calls instead of the API once they passed the checks
	tokenOverride http.HandlerFunc // answers token requests once they passed the checks
}

// apiRequest is a Gmail API request that passed the checks.
type apiRequest struct {
	Method, Path, Auth string
	Query              url.Values
}

// sentMessage is a message as Gmail received it, parsed back.
type sentMessage struct {
	Raw    []byte
	Header mail.Header
	Parts  []part // one for a single-part message
}

type part struct {
	ContentType string // as sent
	Encoding    string // Content-Transfer-Encoding
	Body        string // decoded
}

const (
	clientID     = "1234567890-abc123def456.apps.googleusercontent.com"
	clientSecret = "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"
	refreshToken = "1//0gLrV8cQy7Z3HCgYIARAAGBASNwF-L9IrT6b1nWm4pXhY2sEeD0kQ"
)

func newFakeGoogle(t testing.TB) *fakeGoogle {
	f := &fakeGoogle{t: t, clients: map[string]string{clientID: clientSecret},
		refreshTokens: map[string]bool{refreshToken: true}, accessTokens: map[string]bool{}, expiresIn: 3599}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", f.token)
	mux.HandleFunc("/gmail/v1/", f.api)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGoogle) baseURL() string  { return f.srv.URL + "/" }
func (f *fakeGoogle) tokenURL() string { return f.srv.URL + "/token" }

func (f *fakeGoogle) lock() func() {
	f.mu.Lock()
	return f.mu.Unlock
}

func (f *fakeGoogle) refreshes() int {
	defer f.lock()()
	return len(f.tokenForms)
}

func (f *fakeGoogle) forms() []url.Values {
	defer f.lock()()
	return slices.Clone(f.tokenForms)
}

func (f *fakeGoogle) tokenRequests() int {
	defer f.lock()()
	return f.tokenHits
}

func (f *fakeGoogle) setExpiresIn(secs int) {
	defer f.lock()()
	f.expiresIn = secs
}

// grant adds an OAuth client and a refresh token Google accepts.
func (f *fakeGoogle) grant(id, secret, refresh string) {
	defer f.lock()()
	f.clients[id] = secret
	f.refreshTokens[refresh] = true
}

func (f *fakeGoogle) calls() []apiRequest {
	defer f.lock()()
	return slices.Clone(f.apiRequests)
}

func (f *fakeGoogle) lastCall() apiRequest {
	f.t.Helper()
	c := f.calls()
	if len(c) == 0 {
		f.t.Fatal("Gmail received no call")
	}
	return c[len(c)-1]
}

func (f *fakeGoogle) messages() []*sentMessage {
	defer f.lock()()
	return slices.Clone(f.sent)
}

func (f *fakeGoogle) issuedTokens() []string {
	defer f.lock()()
	var out []string
	for tok := range f.accessTokens {
		out = append(out, tok)
	}
	return out
}

func (f *fakeGoogle) revokeAccessTokens() {
	defer f.lock()()
	f.accessTokens = map[string]bool{}
}

func (f *fakeGoogle) setOverride(h http.HandlerFunc) {
	defer f.lock()()
	f.override = h
}

func (f *fakeGoogle) setTokenOverride(h http.HandlerFunc) {
	defer f.lock()()
	f.tokenOverride = h
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError answers as Google's token endpoint does (RFC 6749 section 5.2).
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

// googleError answers with Google's JSON error object, classic errors[] included.
func googleError(w http.ResponseWriter, code int, status, reason, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code": code, "message": msg, "status": status,
		"errors": []any{map[string]any{"message": msg, "domain": "global", "reason": reason}},
	}})
}

func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokenHits++
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid request.")
		return
	}
	if r.Header.Get("Authorization") != "" {
		// The connector sends the client credentials in the body, as Google documents.
		oauthError(w, http.StatusBadRequest, "invalid_request", "Client credentials sent twice.")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid form.")
		return
	}
	form := r.PostForm
	for k := range form {
		if !slices.Contains([]string{"grant_type", "refresh_token", "client_id", "client_secret"}, k) || len(form[k]) != 1 {
			oauthError(w, http.StatusBadRequest, "invalid_request", "Unexpected parameter: "+k)
			return
		}
	}
	if form.Get("grant_type") != "refresh_token" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+form.Get("grant_type"))
		return
	}
	defer f.lock()()
	if secret, ok := f.clients[form.Get("client_id")]; !ok || secret != form.Get("client_secret") {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	if !f.refreshTokens[form.Get("refresh_token")] {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	f.tokenForms = append(f.tokenForms, form)
	if f.tokenOverride != nil {
		f.tokenOverride(w, r)
		return
	}
	f.issued++
	tok := fmt.Sprintf("ya29.a0AfB_byC%04dq1Zx8Lw3vN6sT0eR5mK2jH7gF4dS9aP", f.issued)
	f.accessTokens[tok] = true
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "expires_in": f.expiresIn, "token_type": "Bearer",
		"scope": "https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.send",
	})
}

func (f *fakeGoogle) api(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	allowedQuery := []string{"alt", "prettyPrint"}
	switch route {
	case "GET /gmail/v1/users/me/labels", "POST /gmail/v1/users/me/messages/send":
	case "GET /gmail/v1/users/me/messages":
		allowedQuery = append(allowedQuery, "q", "maxResults", "pageToken", "labelIds")
	default:
		googleError(w, http.StatusNotFound, "NOT_FOUND", "notFound", "Requested entity was not found.")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(allowedQuery, k) {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalidParameter", "Invalid JSON payload received. Unknown name \""+k+"\"")
			return
		}
	}
	if q.Get("alt") != "json" || q.Get("prettyPrint") != "false" {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalidParameter", "The SDK always asks for alt=json&prettyPrint=false")
		return
	}
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	valid := strings.HasPrefix(auth, "Bearer ") && f.accessTokens[strings.TrimPrefix(auth, "Bearer ")]
	f.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
			"code":    401,
			"message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
			"errors": []any{map[string]any{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
				"location": "Authorization", "locationType": "header"}},
			"status": "UNAUTHENTICATED",
		}})
		return
	}
	var sent *sentMessage
	if route == "POST /gmail/v1/users/me/messages/send" {
		var err error
		if sent, err = f.readSend(r); err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalidArgument", err.Error())
			return
		}
	}
	f.mu.Lock()
	f.apiRequests = append(f.apiRequests, apiRequest{Method: r.Method, Path: r.URL.Path, Auth: auth, Query: q})
	override := f.override
	if sent != nil && override == nil {
		f.sent = append(f.sent, sent)
	}
	n := len(f.sent)
	f.mu.Unlock()
	if override != nil {
		override(w, r)
		return
	}
	switch route {
	case "GET /gmail/v1/users/me/labels":
		writeJSON(w, http.StatusOK, map[string]any{"labels": []any{
			map[string]any{"id": "CHAT", "name": "CHAT", "messageListVisibility": "hide", "labelListVisibility": "labelHide", "type": "system"},
			map[string]any{"id": "SENT", "name": "SENT", "type": "system"},
			map[string]any{"id": "INBOX", "name": "INBOX", "type": "system"},
			map[string]any{"id": "Label_3", "name": "Receipts", "messageListVisibility": "show", "labelListVisibility": "labelShow", "type": "user"},
		}})
	case "GET /gmail/v1/users/me/messages":
		body := map[string]any{
			"messages": []any{
				map[string]any{"id": "18f2a7c3b9d4e5f1", "threadId": "18f2a7c3b9d4e5f1"},
				map[string]any{"id": "18f29e0a1b2c3d4e", "threadId": "18f29d7f6e5d4c3b"},
			},
			"resultSizeEstimate": 201,
		}
		if q.Get("pageToken") == "" {
			body["nextPageToken"] = "09876543210987654321"
		}
		writeJSON(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"id": fmt.Sprintf("18f2b0c%09x", n), "threadId": fmt.Sprintf("18f2b0c%09x", n),
			"labelIds": []string{"SENT"}})
	}
}

// readSend checks a messages.send body, {"raw": base64url}, and parses the message.
func (f *fakeGoogle) readSend(r *http.Request) (*sentMessage, error) {
	if r.Header.Get("Content-Type") != "application/json" {
		return nil, fmt.Errorf("content type %q", r.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var body struct {
		Raw string `json:"raw"`
	}
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("invalid JSON payload: %v", err)
	}
	raw, err := base64.URLEncoding.DecodeString(body.Raw)
	if err != nil {
		return nil, fmt.Errorf("'raw' RFC822 payload message string or uploading message via /upload/* URL required")
	}
	return parseMessage(raw)
}

// parseMessage reads a message back with net/mail and mime/multipart, decoding each part.
func parseMessage(raw []byte) (*sentMessage, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read message: %v", err)
	}
	out := &sentMessage{Raw: raw, Header: msg.Header}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("content type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		p, err := readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		if err != nil {
			return nil, err
		}
		out.Parts = []part{p}
		return out, nil
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		mp, err := mr.NextRawPart() // raw: the test decodes, not the reader
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("next part: %v", err)
		}
		p, err := readPart(mp.Header.Get("Content-Type"), mp.Header.Get("Content-Transfer-Encoding"), mp)
		if err != nil {
			return nil, err
		}
		out.Parts = append(out.Parts, p)
	}
}

func readPart(contentType, encoding string, r io.Reader) (part, error) {
	var body io.Reader
	switch encoding {
	case "quoted-printable":
		body = quotedprintable.NewReader(r)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, r)
	default:
		return part{}, fmt.Errorf("transfer encoding %q", encoding)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return part{}, fmt.Errorf("decode %s part: %v", contentType, err)
	}
	return part{ContentType: contentType, Encoding: encoding, Body: string(b)}, nil
}

// delay returns an override that answers after d, or when the client gives up.
func delay(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			writeJSON(w, http.StatusOK, map[string]any{"labels": []any{}})
		case <-r.Context().Done():
		}
	}
}

// raw returns an override answering status with body as is, and the header pairs.
func raw(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}
