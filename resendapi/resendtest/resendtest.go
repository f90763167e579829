// Package resendtest runs a local fake of Resend's send-email API for tests: it checks
// each request as Resend does (method, path, bearer key, JSON fields, Idempotency-Key),
// answers in Resend's wire format, and remembers what it "sent".
package resendtest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Email is one email the fake accepted and sent.
type Email struct {
	ID             string
	IdempotencyKey string
	UserAgent      string
	From           string
	To, Cc, Bcc    []string
	ReplyTo        string
	Subject        string
	HTML, Text     string
}

// Reply scripts one answer the fake gives before it handles a request normally.
type Reply struct {
	Status  int               // the HTTP status
	Name    string            // Resend's error name; with Message, the body is Resend's error object
	Message string            // Resend's error message
	Header  map[string]string // extra response headers
	Raw     string            // a raw body sent instead of an error object (Content-Type application/json)
	Delay   time.Duration     // wait this long (or until the client gives up) before answering
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API root to configure clients with.
	URL string
	// APIKey is the only key the fake accepts.
	APIKey string

	srv *httptest.Server

	mu       sync.Mutex
	script   []Reply
	sent     []Email
	requests int
	seenKeys []string          // the Idempotency-Key of every request
	keys     map[string]stored // by idempotency key
	domains  []string
}

type stored struct {
	digest [32]byte
	id     string
}

// New starts a fake accepting apiKey; it stops when the test ends.
func New(t testing.TB, apiKey string) *Server {
	s := &Server{APIKey: apiKey, keys: map[string]stored{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/"
	return s
}

// Script queues replies given, in order, to the next requests.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// VerifiedDomains makes the fake refuse, as Resend does, a from address outside domains.
func (s *Server) VerifiedDomains(domains ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains = domains
}

// Sent returns the emails sent so far.
func (s *Server) Sent() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Email(nil), s.sent...)
}

// Requests returns how many requests reached the fake.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// IdempotencyKeys returns the Idempotency-Key header of every request so far, in order.
func (s *Server) IdempotencyKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seenKeys...)
}

// sendRequest is Resend's send-email body, as far as Levqor uses it.
type sendRequest struct {
	From     string          `json:"from"`
	To       json.RawMessage `json:"to"`
	Cc       []string        `json:"cc"`
	Bcc      []string        `json:"bcc"`
	ReplyTo  json.RawMessage `json:"reply_to"`
	Subject  string          `json:"subject"`
	HTML     string          `json:"html"`
	Text     string          `json:"text"`
	Template json.RawMessage `json:"template"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.seenKeys = append(s.seenKeys, r.Header.Get("Idempotency-Key"))
	var scripted *Reply
	if len(s.script) > 0 {
		scripted = &s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()

	if scripted != nil {
		s.answer(w, r, *scripted)
		return
	}
	if r.URL.Path != "/emails" {
		writeError(w, http.StatusNotFound, "not_found", "The requested endpoint does not exist.")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method is not allowed for the requested path.")
		return
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "" || auth == "Bearer ":
		writeError(w, http.StatusUnauthorized, "missing_api_key", "Missing API key in the authorization header.")
		return
	case auth != "Bearer "+s.APIKey:
		writeError(w, http.StatusForbidden, "invalid_api_key", "API key is invalid")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusBadRequest, "validation_error", "Invalid content type.")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if _, sent := r.Header["Idempotency-Key"]; sent && (key == "" || len(key) > 256) {
		writeError(w, http.StatusBadRequest, "invalid_idempotency_key", "The key must be between 1-256 chars.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 40<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "validation_error", "Could not read the body.")
		return
	}
	var req sendRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "validation_error", "Invalid JSON body: "+err.Error())
		return
	}
	email, status, name, msg := s.validate(req)
	if status != 0 {
		writeError(w, status, name, msg)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	digest := sha256.Sum256(body)
	if key != "" {
		if prev, ok := s.keys[key]; ok {
			if prev.digest != digest {
				writeError(w, http.StatusConflict, "invalid_idempotent_request", "Same idempotency key used with a different request payload.")
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"id": prev.id})
			return
		}
	}
	email.ID = uuid.NewString()
	email.IdempotencyKey = key
	email.UserAgent = r.Header.Get("User-Agent")
	s.sent = append(s.sent, email)
	if key != "" {
		s.keys[key] = stored{digest: digest, id: email.ID}
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": email.ID})
}

func (s *Server) validate(req sendRequest) (Email, int, string, string) {
	e := Email{From: req.From, Cc: req.Cc, Bcc: req.Bcc, Subject: req.Subject, HTML: req.HTML, Text: req.Text}
	const unprocessable = http.StatusUnprocessableEntity
	if req.From == "" {
		return e, unprocessable, "missing_required_field", "Missing `from` field."
	}
	from, err := mail.ParseAddress(req.From)
	if err != nil {
		return e, unprocessable, "validation_error", "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."
	}
	if len(s.domains) > 0 {
		domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
		verified := false
		for _, d := range s.domains {
			verified = verified || strings.EqualFold(d, domain)
		}
		if !verified {
			return e, http.StatusForbidden, "validation_error", fmt.Sprintf("The %s domain is not verified. Please, add and verify your domain on https://resend.com/domains", domain)
		}
	}
	if len(req.To) == 0 {
		return e, unprocessable, "missing_required_field", "Missing `to` field."
	}
	if err := unmarshalAddresses(req.To, &e.To); err != nil || len(e.To) == 0 {
		return e, unprocessable, "validation_error", "Invalid `to` field."
	}
	if len(e.To) > 50 {
		return e, unprocessable, "validation_error", "Too many recipients in `to`: the limit is 50."
	}
	if len(req.ReplyTo) > 0 {
		var replyTo []string
		if err := unmarshalAddresses(req.ReplyTo, &replyTo); err != nil || len(replyTo) != 1 {
			return e, unprocessable, "validation_error", "Invalid `reply_to` field."
		}
		e.ReplyTo = replyTo[0]
	}
	for _, list := range [][]string{e.To, e.Cc, e.Bcc} {
		for _, a := range list {
			if _, err := mail.ParseAddress(a); err != nil {
				return e, unprocessable, "validation_error", "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."
			}
		}
	}
	if req.Subject == "" {
		return e, unprocessable, "missing_required_field", "Missing `subject` field."
	}
	if req.HTML == "" && req.Text == "" && len(req.Template) == 0 {
		return e, unprocessable, "missing_required_field", "Missing `html` or `text` field."
	}
	return e, 0, "", ""
}

// unmarshalAddresses accepts a string or an array of strings, as Resend does.
func unmarshalAddresses(raw json.RawMessage, dst *[]string) error {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		*dst = []string{one}
		return nil
	}
	return json.Unmarshal(raw, dst)
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, rep Reply) {
	// Reading the body lets the server notice a client that gives up during the delay.
	io.Copy(io.Discard, io.LimitReader(r.Body, 40<<20))
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	if rep.Raw != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		io.WriteString(w, rep.Raw)
		return
	}
	writeError(w, rep.Status, rep.Name, rep.Message)
}

func writeError(w http.ResponseWriter, status int, name, message string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "name": name, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
