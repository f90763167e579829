package server_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/analytics"
	"github.com/levqor/levqor/newsletter"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi/resendtest"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

const newsletterSecret = "newsletter-test-hash-secret-0123456789"

// newsletterBundle is a server with the newsletter, its notifier talking to the
// Resend fake, over st.
type newsletterBundle struct {
	*bundle
	fake *resendtest.Server
	svc  *newsletter.Service
}

func setupNewsletter(t *testing.T, st store.Store) newsletterBundle {
	t.Helper()
	fake := resendtest.New(t, "re_newsletter_test")
	svc, err := newsletter.NewService(st, newTestMailer(t, fake, "re_newsletter_test"), []byte(newsletterSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(o *testOptions) { o.Store, o.Newsletter = st, svc })
	return newsletterBundle{bundle: b, fake: fake, svc: svc}
}

// waitForEmails waits until the fake has captured n emails.
func (b newsletterBundle) waitForEmails(t *testing.T, n int) []resendtest.Email {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent := b.fake.Sent()
		if len(sent) >= n {
			return sent
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Resend fake captured %d emails, want %d", len(sent), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var confirmLink = regexp.MustCompile(`https://levqor\.example/newsletter/confirm\?token=([A-Za-z0-9_-]+)`)

func TestNewsletter(t *testing.T) {
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			st := e.open(t)
			b := setupNewsletter(t, st)
			json := http.Header{"Content-Type": {"application/json"}}
			html := http.Header{"Accept": {"text/html"}}
			subscribe := func(body string) (int, string) {
				t.Helper()
				resp, data := b.do(t, "POST", "/api/v1/newsletter", json, strings.NewReader(body))
				return resp.StatusCode, string(data)
			}

			// 1. A new address: 202, one confirmation email, and only the hash stored.
			code, first := subscribe(`{"email":" Ada@Example.com ","source":"landing"}`)
			if code != http.StatusAccepted || !strings.Contains(first, `"status":"accepted"`) {
				t.Fatalf("subscribe: %d %s, want 202 accepted", code, first)
			}
			sent := b.waitForEmails(t, 1)
			if sent[0].To[0] != "ada@example.com" || !strings.Contains(sent[0].Subject, "Confirm") {
				t.Fatalf("email to %v subject %q", sent[0].To, sent[0].Subject)
			}
			m := confirmLink.FindStringSubmatch(sent[0].Text)
			if m == nil {
				t.Fatalf("no confirmation link in the email:\n%s", sent[0].Text)
			}
			token := m[1]
			if strings.Contains(token, "ada") {
				t.Errorf("the token shows the address: %s", token)
			}
			hash := analytics.HashEmail([]byte(newsletterSecret), "ada@example.com")
			if status, err := st.NewsletterStatus(t.Context(), hash); err != nil || status != newsletter.Pending {
				t.Fatalf("stored status %q, %v; want pending", status, err)
			}

			// 2. The same answer for a pending address and a brand-new one; no second
			// email inside the resend interval.
			if code, again := subscribe(`{"email":"ada@example.com"}`); code != 202 || again != first {
				t.Errorf("pending again: %d %s, want the first answer %s", code, again, first)
			}
			if code, other := subscribe(`{"email":"grace@example.com"}`); code != 202 || other != first {
				t.Errorf("another address: %d %s, want the first answer %s", code, other, first)
			}
			b.waitForEmails(t, 2)
			time.Sleep(100 * time.Millisecond)
			if n := len(b.fake.Sent()); n != 2 {
				t.Errorf("%d emails sent, want 2 (one per address inside the resend interval)", n)
			}

			// 3. Bad input is a 400 problem pointing at the field.
			if code, body := subscribe(`{"email":"not-an-address"}`); code != 400 || !strings.Contains(body, "/email") {
				t.Errorf("bad address: %d %s, want 400 pointing at /email", code, body)
			}

			// 4. The link shows a button and changes nothing by itself.
			resp, page := b.do(t, "GET", "/newsletter/confirm?token="+token, html, nil)
			if resp.StatusCode != 200 || !strings.Contains(string(page), `action="/newsletter/confirm"`) ||
				!strings.Contains(string(page), `value="`+token+`"`) {
				t.Fatalf("confirm page: %d\n%s", resp.StatusCode, page)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("confirm page CSP %q", csp)
			}
			if status, _ := st.NewsletterStatus(t.Context(), hash); status != newsletter.Pending {
				t.Fatalf("GET confirmed the subscription (%q)", status)
			}

			// 5. A forged or tampered token gets a 400 page.
			tampered := token[:len(token)-2] + "AA"
			if resp, page := b.do(t, "GET", "/newsletter/confirm?token="+tampered, html, nil); resp.StatusCode != 400 || !strings.Contains(string(page), "not valid") {
				t.Errorf("tampered token: %d\n%s", resp.StatusCode, page)
			}

			// 6. A post from another site is refused, and confirms nothing.
			form := func(extra http.Header, tok string) (*http.Response, []byte) {
				h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}
				for k, v := range extra {
					h[k] = v
				}
				return b.do(t, "POST", "/newsletter/confirm", h, strings.NewReader(url.Values{"token": {tok}}.Encode()))
			}
			for _, cross := range []http.Header{
				{"Sec-Fetch-Site": {"cross-site"}},
				{"Origin": {"https://evil.example"}},
			} {
				if resp, _ := form(cross, token); resp.StatusCode != http.StatusForbidden {
					t.Errorf("cross-site post %v: %d, want 403", cross, resp.StatusCode)
				}
			}
			if status, _ := st.NewsletterStatus(t.Context(), hash); status != newsletter.Pending {
				t.Fatalf("a cross-site post confirmed the subscription (%q)", status)
			}

			// 7. The button's same-origin post confirms; twice is harmless.
			for i := range 2 {
				resp, page := form(http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {b.URL}}, token)
				if resp.StatusCode != 200 || !strings.Contains(string(page), "You are subscribed") {
					t.Fatalf("confirm #%d: %d\n%s", i+1, resp.StatusCode, page)
				}
			}
			if status, _ := st.NewsletterStatus(t.Context(), hash); status != newsletter.Confirmed {
				t.Fatalf("after confirm: %q, want confirmed", status)
			}

			// 8. A confirmed address asks again: the same 202, and no email.
			before := len(b.fake.Sent())
			if code, again := subscribe(`{"email":"ada@example.com"}`); code != 202 || again != first {
				t.Errorf("confirmed again: %d %s", code, again)
			}
			time.Sleep(100 * time.Millisecond)
			if n := len(b.fake.Sent()); n != before {
				t.Errorf("a confirmed address got another email (%d, was %d)", n, before)
			}
		})
	}
}

// TestNewsletterTokenExpires: a link older than newsletter.TokenTTL is refused.
func TestNewsletterTokenExpires(t *testing.T) {
	st := storetest.OpenSQLite(t)
	b := setupNewsletter(t, st)
	past := time.Now().Add(-newsletter.TokenTTL - time.Minute)
	old := b.svc.WithClock(func() time.Time { return past })
	if err := old.Subscribe(t.Context(), "old@example.com", ""); err != nil {
		t.Fatal(err)
	}
	token := confirmLink.FindStringSubmatch(b.waitForEmails(t, 1)[0].Text)[1]
	if err := old.Check(token); err != nil {
		t.Fatalf("the token is refused at its own time: %v", err)
	}
	resp, _ := b.do(t, "GET", "/newsletter/confirm?token="+token, http.Header{"Accept": {"application/json"}}, nil)
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("expired token: %d %s, want a 400 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestNewsletterRateLimited: sign-ups count against the per-IP limit.
func TestNewsletterRateLimited(t *testing.T) {
	st := storetest.OpenSQLite(t)
	fake := resendtest.New(t, "re_newsletter_test")
	mail, err := notifier.New(notifier.Config{BaseURL: fake.URL, APIKey: "re_newsletter_test", Domain: "levqor.example", PublicURL: "https://levqor.example"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mail.Close(context.Background()) })
	svc, err := newsletter.NewService(st, mail, []byte(newsletterSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(o *testOptions) {
		o.Store, o.Newsletter = st, svc
		o.Limits = &server.Limits{IP: limiter.Rate{Period: time.Minute, Limit: 3}, Global: limiter.Rate{Period: time.Minute, Limit: 1000},
			Key: limiter.Rate{Period: time.Minute, Limit: 1000}, Store: memory.NewStore()}
	})
	for i := range 4 {
		resp, body := b.do(t, "POST", "/api/v1/newsletter", http.Header{"Content-Type": {"application/json"}},
			strings.NewReader(`{"email":"user`+strconv.Itoa(i)+`@example.com"}`))
		want := http.StatusAccepted
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("sign-up %d: %d %s, want %d", i+1, resp.StatusCode, body, want)
		}
	}
}
