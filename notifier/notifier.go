// Package notifier sends Levqor's own email (welcome, job failed, budget threshold,
// payment confirmation, payment failed, approval requests) through Resend, rendered
// from branded HTML and plain-text templates embedded in the binary. Send delivers one
// message and returns; Enqueue hands a message to a bounded queue whose worker retries
// with backoff and logs what it could not send, so that email never fails or slows a
// request.
//
// Without an API key the notifier is disabled: every message is logged (template and
// recipient domain only) and dropped, and Send and Enqueue return ErrDisabled.
package notifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/resend/resend-go/v3"

	"github.com/levqor/levqor/resendapi"
)

const (
	defaultQueueSize   = 256
	defaultMaxAttempts = 4
	defaultRetryDelay  = 2 * time.Second
	maxRetryDelay      = time.Minute
)

// Config configures a Notifier. Build it once in main.
type Config struct {
	// BaseURL is Resend's API root; "" means https://api.resend.com/.
	BaseURL string
	// APIKey is the Resend API key; "" disables the notifier.
	APIKey string
	// HTTPClient carries the calls; nil means a client with a 30-second timeout.
	HTTPClient *http.Client
	// Domain is the senders' domain (support@, billing@, no-reply@ at it), e.g. levqor.ai.
	Domain string
	// PublicURL roots every link in the emails, e.g. https://levqor.ai.
	PublicURL string
	// Logger receives what the worker did; nil discards. Recipients are logged by domain only.
	Logger *slog.Logger
	// QueueSize bounds Enqueue's queue; 0 means 256.
	QueueSize int
	// MaxAttempts is how often the worker tries a queued message; 0 means 4.
	MaxAttempts int
	// RetryDelay is the worker's first retry delay, doubled after each attempt (at most a
	// minute) and lengthened to Resend's Retry-After; 0 means 2 seconds.
	RetryDelay time.Duration
}

// Message is one email to send.
type Message struct {
	Template string         // one of Templates()
	To       string         // one recipient address
	Data     map[string]any // the template's fields (see the template constants)
	// IdempotencyKey, when set, makes Resend send at most one email per key within 24
	// hours, e.g. "welcome/"+userID. When empty, each Send or Enqueue call gets its own
	// key, which still keeps the worker's retries from sending twice.
	IdempotencyKey string
}

// Errors of Send and Enqueue besides those of Render and resendapi.
var (
	ErrDisabled     = errors.New("notifier: disabled: no Resend API key is configured")
	ErrQueueFull    = errors.New("notifier: the queue is full")
	ErrClosed       = errors.New("notifier: closed")
	ErrBadRecipient = errors.New("notifier: the recipient is not one valid email address")
)

// Notifier sends system email. It is safe for concurrent use.
type Notifier struct {
	client      *resendapi.Client // nil when disabled
	apiKey      string
	domain      string
	siteURL     string
	log         *slog.Logger
	maxAttempts int
	retryDelay  time.Duration

	mu     sync.Mutex
	closed bool
	queue  chan job

	workCtx context.Context // ends when Close gives up waiting
	abort   context.CancelFunc
	done    chan struct{} // closed when the worker has returned
}

// job is one queued message, rendered.
type job struct {
	template string
	toDomain string
	key      string
	email    *resend.SendEmailRequest
}

// New returns a notifier and, unless it is disabled, starts its worker; call Close to
// stop it.
func New(cfg Config) (*Notifier, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("notifier: PublicURL must be an absolute http or https URL")
	}
	if cfg.Domain == "" || strings.ContainsAny(cfg.Domain, "@ <>\r\n\t,;\"") {
		return nil, errors.New("notifier: Domain must be a bare domain such as levqor.ai")
	}
	n := &Notifier{
		apiKey:      cfg.APIKey,
		domain:      cfg.Domain,
		siteURL:     strings.TrimSuffix(cfg.PublicURL, "/"),
		log:         log.With("component", "notifier"),
		maxAttempts: orDefault(cfg.MaxAttempts, defaultMaxAttempts),
		retryDelay:  orDefault(cfg.RetryDelay, defaultRetryDelay),
		done:        make(chan struct{}),
	}
	if cfg.APIKey == "" {
		close(n.done)
		n.log.Info("system email is disabled: no Resend API key (LEVQOR_RESEND_API_KEY); messages will be logged and dropped")
		return n, nil
	}
	if n.client, err = resendapi.New(cfg.BaseURL, cfg.HTTPClient); err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	n.queue = make(chan job, orDefault(cfg.QueueSize, defaultQueueSize))
	n.workCtx, n.abort = context.WithCancel(context.Background())
	go n.work()
	return n, nil
}

// orDefault returns v, or def when v is zero or less.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Enabled reports whether the notifier sends email (it has an API key).
func (n *Notifier) Enabled() bool { return n.client != nil }

// Send renders and sends msg once, now, and returns Resend's email id. It does not
// retry and does not log; the error is ErrDisabled, ErrBadRecipient, one of Render's, a
// *resendapi.Error or ctx's.
func (n *Notifier) Send(ctx context.Context, msg Message) (string, error) {
	if !n.Enabled() {
		return "", ErrDisabled
	}
	j, err := n.prepare(msg)
	if err != nil {
		return "", err
	}
	return n.client.Send(ctx, n.apiKey, j.email, j.key)
}

// Enqueue renders msg and queues it for the worker without waiting. It returns nil once
// the message is queued; otherwise the reason (ErrDisabled, ErrQueueFull, ErrClosed,
// ErrBadRecipient or one of Render's), which it has already logged, so that a caller
// may ignore it.
func (n *Notifier) Enqueue(msg Message) error {
	if !n.Enabled() {
		n.log.Info("email dropped: system email is disabled", "template", msg.Template, "to_domain", domainOf(msg.To))
		return ErrDisabled
	}
	j, err := n.prepare(msg)
	if err != nil {
		n.log.Error("email not queued", "template", msg.Template, "to_domain", domainOf(msg.To), "error", err.Error())
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.log.Warn("email dropped: the notifier is closed", "template", j.template, "to_domain", j.toDomain)
		return ErrClosed
	}
	select {
	case n.queue <- j:
		return nil
	default:
		n.log.Warn("email dropped: the queue is full", "template", j.template, "to_domain", j.toDomain, "queue_size", cap(n.queue))
		return ErrQueueFull
	}
}

// Close stops taking messages and waits for the worker to send (or give up on) every
// queued one. If ctx ends first, it aborts the send in flight, drops what is left with
// a log line each, and returns ctx's error.
func (n *Notifier) Close(ctx context.Context) error {
	if !n.Enabled() {
		return nil
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
		return nil // drained, even if ctx has ended too
	default:
	}
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		n.abort()
		<-n.done
		return ctx.Err()
	}
}

func (n *Notifier) prepare(msg Message) (job, error) {
	s, ok := specs[msg.Template]
	if !ok {
		return job{}, fmt.Errorf("%w %q", ErrUnknownTemplate, msg.Template)
	}
	to, err := mail.ParseAddress(msg.To)
	if err != nil || to.Name != "" || strings.ContainsAny(msg.To, "\r\n") {
		return job{}, ErrBadRecipient
	}
	c, err := Render(msg.Template, msg.Data, n.siteURL)
	if err != nil {
		return job{}, err
	}
	key := msg.IdempotencyKey
	if key == "" {
		key = "levqor-notifier/" + randomID()
	}
	if len(key) > resendapi.MaxIdempotencyKey {
		return job{}, fmt.Errorf("notifier: the idempotency key is longer than %d bytes", resendapi.MaxIdempotencyKey)
	}
	email := &resend.SendEmailRequest{
		From:    n.sender(s.sender),
		To:      []string{to.Address},
		Subject: c.Subject,
		Html:    c.HTML,
		Text:    c.Text,
	}
	if s.replyTo != "" {
		email.ReplyTo = s.replyTo + "@" + n.domain
	}
	return job{template: msg.Template, toDomain: domainOf(to.Address), key: key, email: email}, nil
}

// sender renders a sender's From with Levqor's display name.
func (n *Notifier) sender(local string) string {
	name := "Levqor"
	switch local {
	case SenderSupport:
		name = "Levqor Support"
	case SenderBilling:
		name = "Levqor Billing"
	case SenderSecurity:
		name = "Levqor Security"
	}
	return name + " <" + local + "@" + n.domain + ">"
}

func (n *Notifier) work() {
	defer close(n.done)
	for j := range n.queue {
		n.deliverSafely(j)
	}
}

// deliverSafely keeps the worker, and so the process, alive whatever one send does.
func (n *Notifier) deliverSafely(j job) {
	defer func() {
		if p := recover(); p != nil {
			// The panic value could hold the request; its type is enough to go on.
			n.log.Error("email not sent: the send panicked", "template", j.template, "to_domain", j.toDomain,
				"panic_type", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
		}
	}()
	n.deliver(j)
}

// deliver tries one message up to maxAttempts times under the same idempotency key.
func (n *Notifier) deliver(j job) {
	log := n.log.With("template", j.template, "to_domain", j.toDomain)
	delay := n.retryDelay
	for attempt := 1; ; attempt++ {
		if n.workCtx.Err() != nil {
			log.Warn("email dropped: the notifier closed before it was sent")
			return
		}
		id, err := n.client.Send(n.workCtx, n.apiKey, j.email, j.key)
		if err == nil {
			log.Info("email sent", "email_id", id, "attempts", attempt)
			return
		}
		var re *resendapi.Error
		retryable := errors.As(err, &re) && re.Retryable()
		switch {
		case n.workCtx.Err() != nil:
			log.Warn("email dropped: the notifier closed before it was sent", "attempts", attempt)
			return
		case !retryable || attempt >= n.maxAttempts:
			log.Error("email not sent", "attempts", attempt, "error", err.Error())
			return
		}
		wait := min(max(delay, re.RetryAfter), maxRetryDelay)
		log.Warn("email send failed; retrying", "attempt", attempt, "retry_in", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.workCtx.Done():
			t.Stop()
		}
		delay = min(delay*2, maxRetryDelay)
	}
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// domainOf is what the logs say about a recipient: the domain, not the address.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 || i == len(addr)-1 {
		return "(invalid)"
	}
	d := strings.TrimRight(addr[i+1:], ">")
	if len(d) > 253 || strings.ContainsAny(d, " \r\n\t\"<") {
		return "(invalid)"
	}
	return strings.ToLower(d)
}
