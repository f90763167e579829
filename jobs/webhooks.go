package jobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/levqor/levqor/outbound"
)

// SignatureHeader carries a completion webhook's signature (docs/webhooks.md).
const SignatureHeader = "Levqor-Signature"

// Sign returns the Levqor-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a Levqor-Signature header against body, refusing signatures older
// than tolerance (replays). It is what docs/webhooks.md tells receivers to do.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("malformed %s header", SignatureHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp outside the %s tolerance", tolerance)
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	_, wantSig, _ := strings.Cut(want, ",v1=")
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(wantSig)) {
			return nil
		}
	}
	return fmt.Errorf("signature does not match")
}

// Webhook delivery limits.
const (
	maxCallbackAttempts = 8
	callbackTimeout     = 10 * time.Second
	callbackBatch       = 16
)

// Dispatcher delivers completion webhooks: it claims due deliveries from the
// jobs table, POSTs the job record signed with the owner's secret, and records each
// attempt on the job; failures are retried with backoff up to 8 attempts.
type Dispatcher struct {
	store  Store
	client *http.Client // through the outbound guard
	encode func(Job) ([]byte, error)
	secret func(ctx context.Context, ownerID string) (string, error)
	sealer SecretSealer // nil (tests only): secrets in clear
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	// retryBase scales the backoff between failed deliveries (5 s: about 5 s, 10 s, 20 s, …).
	retryBase time.Duration
	observe   Observer
}

// newDispatcher returns a Dispatcher. encode renders a job as the API does;
// retryBase 0 is 5 s.
func newDispatcher(store Store, client *http.Client, encode func(Job) ([]byte, error), sealer SecretSealer, retryBase time.Duration, log *slog.Logger) *Dispatcher {
	if retryBase <= 0 {
		retryBase = 5 * time.Second
	}
	d := &Dispatcher{store: store, client: client, encode: encode, sealer: sealer, log: log, now: time.Now, wake: make(chan struct{}, 1), retryBase: retryBase, observe: noObserver{}}
	d.secret = func(ctx context.Context, ownerID string) (string, error) {
		fresh, err := newWebhookSecret(d.sealer, ownerID, d.now())
		if err != nil {
			return "", err
		}
		s, err := store.WebhookSecret(ctx, ownerID, fresh)
		if err != nil {
			return "", err
		}
		s, err = openWebhookSecret(d.sealer, s)
		return s.Secret, err
	}
	return d
}

// Wake makes the dispatcher look for due deliveries now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx ends.
func (d *Dispatcher) run(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		now := d.now().UTC()
		// The lease covers the whole batch, delivered one after another, so no other
		// instance takes a delivery of it meanwhile.
		list, err := d.store.ClaimCallbacks(ctx, now, now.Add(callbackBatch*callbackTimeout+callbackTimeout), callbackBatch)
		if err != nil && ctx.Err() == nil {
			d.log.Error("claim webhook deliveries", "error", err.Error())
		}
		for _, j := range list {
			if ctx.Err() != nil {
				return nil // undelivered claims come back when their lease ends
			}
			d.deliver(ctx, j)
		}
		if len(list) == callbackBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.wake:
		}
	}
}

func (d *Dispatcher) deliver(ctx context.Context, j Job) {
	attempt := CallbackAttempt{Attempt: len(j.Callbacks) + 1, At: d.now().UTC()}
	attempt.StatusCode, attempt.Error = d.post(ctx, j)
	if ctx.Err() != nil {
		return // shutting down mid-delivery: not the receiver's failure; retried after the lease
	}
	attempts := append(j.Callbacks, attempt)
	state, next := CallbackDelivered, (*time.Time)(nil)
	if attempt.Error != "" {
		state = CallbackFailed
		if attempt.Attempt < maxCallbackAttempts {
			t := d.now().UTC().Add(scale(backoff(attempt.Attempt, 0), d.retryBase))
			state, next = CallbackPending, &t
		}
	}
	if err := d.store.RecordCallback(context.WithoutCancel(ctx), j.ID, attempts, state, next, d.now().UTC()); err != nil {
		d.log.Error("record webhook delivery", "job_id", j.ID, "error", err.Error())
	}
	switch state {
	case CallbackDelivered:
		d.observe.WebhookDelivered("delivered")
	case CallbackPending:
		d.observe.WebhookDelivered("retrying")
	default:
		d.observe.WebhookDelivered("failed")
	}
}

// post sends one delivery and returns the status code and, unless it was 2xx, why it failed.
func (d *Dispatcher) post(ctx context.Context, j Job) (int, string) {
	body, err := d.encode(j)
	if err != nil {
		return 0, "could not encode the job"
	}
	secret, err := d.secret(ctx, j.OwnerID)
	if err != nil {
		return 0, "signing secret unavailable"
	}
	ctx, cancel := context.WithTimeout(ctx, callbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid callback URL"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Levqor-Webhooks/1")
	req.Header.Set(SignatureHeader, Sign(secret, d.now(), body))
	req.Header.Set("Levqor-Job-Id", j.ID)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, deliveryError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Sprintf("receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// deliveryError keeps a transport error short and free of URLs (which may carry
// secrets): the outbound guard's refusal (its reason names no URL), a time-out, a
// refused connection, or else "delivery failed".
func deliveryError(err error) string {
	var refused *outbound.RefusedError
	var netErr net.Error
	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return "delivery failed"
}
