package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levqor/levqor/gen/client"
)

// verifyWebhook is what a receiver does, written from docs/webhooks.md alone (not
// from jobs.Verify): split Levqor-Signature on ",", each part on the first "=",
// take t and every v1; HMAC-SHA256 the string "<t>.<raw body>" with the secret,
// hex-encode it, compare it in constant time with each v1; refuse a t more than
// 5 minutes from now.
func verifyWebhook(secret, header string, body []byte, now time.Time) error {
	var ts string
	var v1s []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			v1s = append(v1s, v)
		}
	}
	if ts == "" || len(v1s) == 0 {
		return errors.New("no t or no v1 in the signature header")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	expected := hex.EncodeToString(mac.Sum(nil))
	matched := false
	for _, v1 := range v1s {
		if hmac.Equal([]byte(expected), []byte(v1)) {
			matched = true
		}
	}
	if !matched {
		return errors.New("no v1 matches")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("t is not a Unix time: %w", err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("t is %v away from now", d)
	}
	return nil
}

// TestWebhookVerifierRefuses shows verifyWebhook can say no, so that the
// deliveries it accepts below mean something.
func TestWebhookVerifierRefuses(t *testing.T) {
	const secret = "whsec_test"
	now := time.Unix(1764121486, 0)
	body := []byte(`{"id":"job_1"}`)
	sign := func(secret, ts string, body []byte) string {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(body)))
		return hex.EncodeToString(mac.Sum(nil))
	}
	good := "t=1764121486,v1=" + sign(secret, "1764121486", body)
	if err := verifyWebhook(secret, good, body, now); err != nil {
		t.Fatalf("a correct signature: %v", err)
	}
	cases := []struct{ name, secret, header, body string }{
		{"tampered body", secret, good, `{"id":"job_2"}`},
		{"other secret", "whsec_other", good, string(body)},
		{"t changed", secret, "t=1764121487,v1=" + sign(secret, "1764121486", body), string(body)},
		{"stale", secret, "t=1764121000,v1=" + sign(secret, "1764121000", body), string(body)},
		{"no v1", secret, "t=1764121486", string(body)},
		{"upper-case hex", secret, "t=1764121486,v1=" + strings.ToUpper(sign(secret, "1764121486", body)), string(body)},
	}
	for _, tc := range cases {
		if err := verifyWebhook(tc.secret, tc.header, []byte(tc.body), now); err == nil {
			t.Errorf("%s: verified", tc.name)
		}
	}
	// One matching v1 among several is enough (as during a secret roll).
	if err := verifyWebhook(secret, "t=1764121486,v1=00ff,v1="+sign(secret, "1764121486", body), body, now); err != nil {
		t.Errorf("second v1 matches: %v", err)
	}
}

// delivery is one request a hookReceiver got.
type delivery struct {
	method, uri string
	header      http.Header
	body        []byte
	at          time.Time
}

// hookReceiver is a webhook receiver on 127.0.0.1 that answers the nth delivery
// with the nth status of its script (the last repeating).
type hookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []delivery
}

func newHookReceiver(t *testing.T, script ...int) *hookReceiver {
	t.Helper()
	r := &hookReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body) // the raw bytes, before any JSON parsing
		r.mu.Lock()
		r.got = append(r.got, delivery{req.Method, req.URL.RequestURI(), req.Header.Clone(), body, time.Now()})
		n := len(r.got)
		r.mu.Unlock()
		w.WriteHeader(script[min(n, len(script))-1])
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// withoutDeliveryFields drops what legitimately differs between a delivered job
// and the same job read afterwards: the delivery being recorded changes callbacks
// and updated_at, and nothing else.
func withoutDeliveryFields(t *testing.T, doc any) map[string]any {
	t.Helper()
	m, ok := jsonValue(t, doc).(map[string]any)
	if !ok {
		t.Fatalf("not a JSON object: %s", mustJSON(t, doc))
	}
	delete(m, "callbacks")
	delete(m, "updated_at")
	return m
}

func TestJobWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmin)

	secretOf := func(t *testing.T, key string) string {
		t.Helper()
		resp, err := b.Client.GetWebhookSecretWithResponse(t.Context(), apiKey(key))
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("GET webhook secret: %v %+v", err, resp)
		}
		if !strings.HasPrefix(resp.JSON200.Secret, "whsec_") || len(resp.JSON200.Secret) < 30 {
			t.Fatalf("secret %q", resp.JSON200.Secret)
		}
		return resp.JSON200.Secret
	}
	// hookedJob submits a one-step echo job whose webhook goes to url.
	hookedJob := func(t *testing.T, key, url string) string {
		t.Helper()
		body := echoJob("hooked")
		body["callback_url"] = url
		return b.submit(t, key, body).JobId
	}
	waitCallbacks := func(t *testing.T, key, id string, n int) client.Job {
		t.Helper()
		return b.waitJob(t, key, id, 10*time.Second, fmt.Sprintf("called back %d times", n), func(j client.Job) bool { return len(j.Callbacks) >= n })
	}
	// checkDelivery verifies a delivery as a receiver would and checks its headers.
	checkDelivery := func(t *testing.T, d delivery, secret, jobID string) {
		t.Helper()
		if d.method != "POST" || d.header.Get("Content-Type") != "application/json" || d.header.Get("User-Agent") != "Levqor-Webhooks/1" || d.header.Get("Levqor-Job-Id") != jobID {
			t.Errorf("delivery %s %s with headers %v, want POST application/json from Levqor-Webhooks/1 for %s", d.method, d.uri, d.header, jobID)
		}
		if err := verifyWebhook(secret, d.header.Get("Levqor-Signature"), d.body, time.Now()); err != nil {
			t.Errorf("delivery does not verify with the owner's secret: %v (header %q)", err, d.header.Get("Levqor-Signature"))
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(d.header.Get("Levqor-Signature"), "t="), ",")
		if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || d.at.Sub(time.Unix(sec, 0)).Abs() > 5*time.Second {
			t.Errorf("signature t=%s, delivery at %v: want the time of signing", ts, d.at)
		}
	}

	t.Run("signed delivery of the job record", func(t *testing.T) {
		t.Parallel()
		ten := b.newTenant(t, "hook-one@example.com")
		secret := secretOf(t, ten.key)
		if again := secretOf(t, ten.key); again != secret {
			t.Fatalf("the secret changed between two reads")
		}
		rcv := newHookReceiver(t, http.StatusNoContent)
		id := hookedJob(t, ten.key, rcv.URL+"/hooks/levqor?src=test")
		j := waitCallbacks(t, ten.key, id, 1)

		got := rcv.deliveries()
		if len(got) != 1 {
			t.Fatalf("%d deliveries, want 1", len(got))
		}
		d := got[0]
		if d.uri != "/hooks/levqor?src=test" {
			t.Errorf("delivered to %q", d.uri)
		}
		checkDelivery(t, d, secret, id)
		if err := verifyWebhook(secret, d.header.Get("Levqor-Signature"), append([]byte(" "), d.body...), time.Now()); err == nil {
			t.Error("a changed body still verifies")
		}

		// The body is the job as GET shows it (the delivery's own record aside).
		var sent client.Job
		if err := json.Unmarshal(d.body, &sent); err != nil {
			t.Fatalf("delivered body: %v: %s", err, d.body)
		}
		if sent.Id != id || sent.Status != "succeeded" || len(sent.Callbacks) != 0 || sent.Result == nil {
			t.Errorf("delivered job %s", d.body)
		}
		if got, want := withoutDeliveryFields(t, d.body), withoutDeliveryFields(t, j); !sameJSON(t, got, want) {
			t.Errorf("delivered body\n%s\nwant GET /api/v1/jobs/%s\n%s", mustJSON(t, got), id, mustJSON(t, want))
		}
		if cb := j.Callbacks[0]; cb.Attempt != 1 || cb.StatusCode == nil || *cb.StatusCode != http.StatusNoContent || cb.Error != nil || cb.At.Before(*j.FinishedAt) {
			t.Errorf("callbacks[0] %s, want attempt 1 with 204 after the job finished", mustJSON(t, cb))
		}
		// Delivered means done: the dispatcher (which looks every 500 ms) sends nothing more.
		time.Sleep(700 * time.Millisecond)
		if n := len(rcv.deliveries()); n != 1 {
			t.Errorf("%d deliveries after an acknowledged one, want 1", n)
		}
	})

	t.Run("retried until acknowledged", func(t *testing.T) {
		t.Parallel()
		ten := b.newTenant(t, "hook-retry@example.com")
		secret := secretOf(t, ten.key)
		rcv := newHookReceiver(t, 500, 500, 200)
		id := hookedJob(t, ten.key, rcv.URL+"/hook")
		j := waitCallbacks(t, ten.key, id, 3)

		got := rcv.deliveries()
		if len(got) != 3 || len(j.Callbacks) != 3 {
			t.Fatalf("%d deliveries and %d recorded attempts, want 3 and 3", len(got), len(j.Callbacks))
		}
		for i, cb := range j.Callbacks {
			want := []int{500, 500, 200}[i]
			if cb.Attempt != i+1 || cb.StatusCode == nil || *cb.StatusCode != want {
				t.Errorf("callbacks[%d] %s, want attempt %d answered %d", i, mustJSON(t, cb), i+1, want)
			}
			if failed := cb.Error != nil; failed != (want != 200) || (failed && !strings.Contains(*cb.Error, "500")) {
				t.Errorf("callbacks[%d] error %v for status %d", i, deref(cb.Error), want)
			}
			if i > 0 && cb.At.Before(j.Callbacks[i-1].At) {
				t.Errorf("callbacks[%d] at %v is before the previous attempt", i, cb.At)
			}
		}
		for i, d := range got {
			checkDelivery(t, d, secret, id)
			// Each attempt carries the job as it was, with the attempts before it.
			var sent client.Job
			if err := json.Unmarshal(d.body, &sent); err != nil || len(sent.Callbacks) != i || sent.Status != "succeeded" {
				t.Errorf("delivery %d: %v, %d callbacks in the body, want %d", i+1, err, len(sent.Callbacks), i)
			}
		}
	})

	t.Run("failed and canceled jobs are delivered too", func(t *testing.T) {
		t.Parallel()
		ten := b.newTenant(t, "hook-ends@example.com")
		secret := secretOf(t, ten.key)
		rcv := newHookReceiver(t, 200)
		failing := b.submit(t, ten.key, map[string]any{"workflow": "hooked", "payload": map[string]any{}, "callback_url": rcv.URL + "/failed",
			"steps": []any{step("e", "core", "echo", map[string]any{"v": "{{payload.nope}}"})}}).JobId
		later := echoJob("hooked")
		later["callback_url"] = rcv.URL + "/canceled"
		later["run_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		canceled := b.submit(t, ten.key, later).JobId
		if resp, err := b.Client.CancelJobWithResponse(t.Context(), canceled, apiKey(ten.key)); err != nil || resp.JSON200 == nil {
			t.Fatalf("cancel: %v %+v", err, resp)
		}
		waitCallbacks(t, ten.key, failing, 1)
		waitCallbacks(t, ten.key, canceled, 1)
		byURI := map[string]delivery{}
		for _, d := range rcv.deliveries() {
			byURI[d.uri] = d
		}
		for uri, want := range map[string]struct{ id, status string }{"/failed": {failing, "failed"}, "/canceled": {canceled, "canceled"}} {
			d, ok := byURI[uri]
			if !ok {
				t.Errorf("no delivery to %s", uri)
				continue
			}
			checkDelivery(t, d, secret, want.id)
			var sent client.Job
			if err := json.Unmarshal(d.body, &sent); err != nil || string(sent.Status) != want.status || sent.Error == nil {
				t.Errorf("%s: %v %s", uri, err, d.body)
			}
		}
	})

	t.Run("rolling the secret changes the signing key", func(t *testing.T) {
		t.Parallel()
		ten := b.newTenant(t, "hook-roll@example.com")
		old := secretOf(t, ten.key)
		rcv := newHookReceiver(t, 200)
		first := hookedJob(t, ten.key, rcv.URL+"/first")
		waitCallbacks(t, ten.key, first, 1)

		resp, err := b.Client.RollWebhookSecretWithResponse(t.Context(), apiKey(ten.key))
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("roll: %v %+v", err, resp)
		}
		rolled := resp.JSON200.Secret
		if rolled == old || !strings.HasPrefix(rolled, "whsec_") || secretOf(t, ten.key) != rolled {
			t.Fatalf("after roll: secret %q (old %q), GET shows %q", rolled, old, secretOf(t, ten.key))
		}
		second := hookedJob(t, ten.key, rcv.URL+"/second")
		waitCallbacks(t, ten.key, second, 1)

		got := rcv.deliveries()
		if len(got) != 2 || got[0].uri != "/first" || got[1].uri != "/second" {
			t.Fatalf("deliveries %d, want /first then /second", len(got))
		}
		checkDelivery(t, got[0], old, first)
		checkDelivery(t, got[1], rolled, second)
		if err := verifyWebhook(old, got[1].header.Get("Levqor-Signature"), got[1].body, time.Now()); err == nil {
			t.Error("a delivery after the roll still verifies with the old secret")
		}
		// Secrets are per owner: another owner's secret is not this one.
		if other := secretOf(t, b.newTenant(t, "hook-roll-other@example.com").key); other == rolled || other == old {
			t.Error("two owners share a webhook secret")
		}
	})
}
