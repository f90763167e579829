package server_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi/resendtest"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
)

var (
	approvalLinkRE = regexp.MustCompile(`https://levqor\.example/approvals/([A-Za-z0-9_-]+)`)
	formTokenRE    = regexp.MustCompile(`name="form_token" value="([A-Za-z0-9_-]+)"`)
)

// setupApprovals is a server over st whose engine mails core.approval requests
// through a notifier to a Resend fake.
func setupApprovals(t *testing.T, st store.Store) (*bundle, *resendtest.Server) {
	t.Helper()
	fake := resendtest.New(t, "re_approval_test")
	mail := newTestMailer(t, fake, "re_approval_test")
	b := setup(t, func(o *testOptions) {
		o.Store = st
		e := newEngineApprovals(t, st, o.Logger, []string{"127.0.0.0/8"}, 0,
			jobs.ApprovalOptions{Key: []byte("server approval key of 32 bytes!"), PublicURL: "https://levqor.example", Mail: mail})
		o.Jobs, o.Hub = e.Service, e.Hub
	}, withAdmin)
	return b, fake
}

// newTestMailer is a notifier sending to fake with apiKey, from levqor.example,
// closed when the test ends.
func newTestMailer(t *testing.T, fake *resendtest.Server, apiKey string) *notifier.Notifier {
	t.Helper()
	mail, err := notifier.New(notifier.Config{BaseURL: fake.URL, APIKey: apiKey,
		Domain: "levqor.example", PublicURL: "https://levqor.example", RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mail.Close(ctx)
	})
	return mail
}

// approvalEmail waits for the approval email to `to` and returns the token of its link.
func approvalEmail(t *testing.T, fake *resendtest.Server, to string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range fake.Sent() {
			if len(e.To) == 1 && e.To[0] == to {
				m := approvalLinkRE.FindStringSubmatch(e.Text)
				if m == nil {
					t.Fatalf("approval email without a link:\n%s", e.Text)
				}
				return m[1]
			}
		}
	}
	t.Fatalf("no approval email to %s", to)
	return ""
}

// reviewJob is a draft, its approval by reviewer and the send that follows.
func reviewJob(reviewer, timeout string) map[string]any {
	return map[string]any{"workflow": "reviewed-reply", "payload": map[string]any{"reviewer": reviewer},
		"steps": []any{
			step("draft", "core", "echo", map[string]any{"text": "Dear <ACME>,\n\nthe fix ships Monday."}),
			step("review", "core", "approval", map[string]any{"to": "{{payload.reviewer}}", "subject": "Send the reply?",
				"message": "{{steps.draft.output.text}}", "timeout": timeout}),
			step("send", "core", "echo", map[string]any{"text": "{{steps.draft.output.text}}", "by": "{{steps.review.output.by}}"}),
		}}
}

// The approval pages, end to end over HTTP on both engines: the emailed link shows
// the draft and two buttons without deciding; hostile and forged requests are
// refused with 4xx (pages for browsers, problems for API clients); the page's post
// decides once, and the job resumes with who and when; an expired link is 410.
func TestApprovalPages(t *testing.T) {
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			b, fake := setupApprovals(t, e.open(t))
			ten := b.newTenant(t, "approvals@example.com")
			job := b.submit(t, ten.key, reviewJob("ana@example.com", "1h")).JobId
			b.awaitStatus(t, ten.key, job, "waiting")
			token := approvalEmail(t, fake, "ana@example.com")
			path := "/approvals/" + token
			htmlAccept := http.Header{"Accept": {"text/html"}}

			// The page: the draft, escaped; a form with its token; looking decides nothing.
			for range 2 {
				resp, page := b.do(t, "GET", path, htmlAccept, nil)
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Send the reply?") ||
					!strings.Contains(string(page), "Dear &lt;ACME&gt;,\n\nthe fix ships Monday.") ||
					!strings.Contains(string(page), `action="`+path+`"`) || !strings.Contains(string(page), "ana@example.com") {
					t.Fatalf("approval page: %d\n%s", resp.StatusCode, page)
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "unsafe-inline") ||
					resp.Header.Get("Referrer-Policy") != "no-referrer" {
					t.Errorf("approval page CSP %q, Referrer-Policy %q", csp, resp.Header.Get("Referrer-Policy"))
				}
			}
			_, page := b.do(t, "GET", path, htmlAccept, nil)
			m := formTokenRE.FindStringSubmatch(string(page))
			if m == nil {
				t.Fatalf("no form token on the page:\n%s", page)
			}
			formToken := m[1]
			if status, _ := b.jobState(t, ten.key, job); status != "waiting" {
				t.Fatalf("looking at the page made the job %s", status)
			}

			post := func(h http.Header, form url.Values) (*http.Response, []byte) {
				t.Helper()
				hh := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
				for k, v := range h {
					hh[k] = v
				}
				return b.do(t, "POST", path, hh, strings.NewReader(form.Encode()))
			}
			valid := url.Values{"decision": {"approve"}, "form_token": {formToken}, "name": {"Ana"}, "comment": {"Looks right."}}
			with := func(k, v string) url.Values {
				f := url.Values{}
				for key, vals := range valid {
					f[key] = vals
				}
				if v == "" {
					f.Del(k)
				} else {
					f.Set(k, v)
				}
				return f
			}
			flip := byte('A')
			if token[12] == 'A' {
				flip = 'B'
			}
			forged := "/approvals/" + token[:12] + string(flip) + token[13:]
			cases := []struct {
				name   string
				method string
				path   string
				header http.Header
				body   string
				want   int
			}{
				{"forged token, page", "GET", forged, htmlAccept, "", http.StatusNotFound},
				{"forged token, problem", "GET", forged, http.Header{"Accept": {"application/json"}}, "", http.StatusNotFound},
				{"forged token, post", "POST", forged, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, valid.Encode(), http.StatusNotFound},
				{"token too long", "GET", "/approvals/" + strings.Repeat("A", 600), nil, "", http.StatusBadRequest},
				{"token with odd characters", "GET", "/approvals/" + token[:20] + "%21%21", nil, "", http.StatusBadRequest},
				{"JSON body", "POST", path, http.Header{"Content-Type": {"application/json"}}, `{"decision":"approve","form_token":"` + formToken + `"}`, http.StatusUnsupportedMediaType},
				{"no content type", "POST", path, nil, valid.Encode(), http.StatusUnsupportedMediaType},
				{"unknown decision", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, with("decision", "maybe").Encode(), http.StatusBadRequest},
				{"no form token", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, with("form_token", "").Encode(), http.StatusBadRequest},
				{"another form token", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, with("form_token", "AAAAAAAAAAAAAAAAAAAAAAAA").Encode(), http.StatusForbidden},
				{"unknown field", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, with("approved", "yes").Encode(), http.StatusBadRequest},
				{"decision given twice", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, valid.Encode() + "&decision=reject", http.StatusBadRequest},
				{"comment too long", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, with("comment", strings.Repeat("x", 2001)).Encode(), http.StatusBadRequest},
				{"body over the limit", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, with("comment", strings.Repeat("x", 2<<20)).Encode(), http.StatusRequestEntityTooLarge},
				{"cross-site post", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"cross-site"}}, valid.Encode(), http.StatusForbidden},
				{"post from another origin", "POST", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://evil.example"}}, valid.Encode(), http.StatusForbidden},
				{"wrong method", "PUT", path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, valid.Encode(), http.StatusMethodNotAllowed},
			}
			for _, c := range cases {
				resp, body := b.do(t, c.method, c.path, c.header, strings.NewReader(c.body))
				if resp.StatusCode != c.want {
					t.Errorf("%s: %d, want %d\n%.300s", c.name, resp.StatusCode, c.want, body)
					continue
				}
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					if c.header.Get("Accept") != "text/html" {
						t.Errorf("%s: an HTML answer to a client that did not ask for one", c.name)
					}
					continue
				}
				problemOf(t, resp, body)
			}
			if status, _ := b.jobState(t, ten.key, job); status != "waiting" {
				t.Fatalf("a refused request made the job %s", status)
			}

			// The page's post decides; a second is a conflict; the job resumes.
			resp, page := post(http.Header{"Accept": {"text/html"}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {b.URL}}, valid)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Approved") {
				t.Fatalf("approve: %d\n%s", resp.StatusCode, page)
			}
			resp, page = post(htmlAccept, with("decision", "reject"))
			if resp.StatusCode != http.StatusConflict || !strings.Contains(html.UnescapeString(string(page)), "approved already") {
				t.Errorf("a second decision: %d\n%.500s", resp.StatusCode, page)
			}
			if resp, body := post(nil, valid); resp.StatusCode != http.StatusConflict || problemOf(t, resp, body).Code != "conflict" {
				t.Errorf("a second decision, problem: %d %s", resp.StatusCode, body)
			}
			if resp, _ := b.do(t, "GET", path, htmlAccept, nil); resp.StatusCode != http.StatusConflict {
				t.Errorf("the page of a spent link: %d, want 409", resp.StatusCode)
			}
			steps := b.awaitStatus(t, ten.key, job, "succeeded")
			var d jobs.Decision
			out, _ := json.Marshal(steps[1]["output"])
			if err := json.Unmarshal(out, &d); err != nil || d.Decision != "approve" || d.By != "ana@example.com" || d.Name != "Ana" ||
				d.Comment != "Looks right." || d.Via != "email" || time.Since(d.DecidedAt) > time.Minute {
				t.Errorf("the approval step's output %s", out)
			}
			if by := steps[2]["output"].(map[string]any)["by"]; by != "ana@example.com" {
				t.Errorf("the next step read by %v", by)
			}

			// An expired link: 410, as a page and as a problem.
			short := b.submit(t, ten.key, reviewJob("eve@example.com", "1s")).JobId
			b.awaitStatus(t, ten.key, short, "waiting")
			late := "/approvals/" + approvalEmail(t, fake, "eve@example.com")
			b.awaitStatus(t, ten.key, short, "failed")
			if resp, page := b.do(t, "GET", late, htmlAccept, nil); resp.StatusCode != http.StatusGone || !strings.Contains(string(page), "expired") {
				t.Errorf("an expired link's page: %d\n%.300s", resp.StatusCode, page)
			}
			if resp, body := b.do(t, "POST", late, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(valid.Encode())); resp.StatusCode != http.StatusGone ||
				problemOf(t, resp, body).Code != "gone" {
				t.Errorf("deciding through an expired link: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// POST /api/v1/jobs/{id}/approvals/{step_id}: the owner decides with a key, once;
// another owner's job and a step that is no approval are 404; a bad body is 400.
// Approval inputs that cannot work are refused at intake.
func TestDecideJobApprovalRoute(t *testing.T) {
	b, fake := setupApprovals(t, storetest.OpenSQLite(t))
	ten := b.newTenant(t, "approver@example.com")
	other := b.newTenant(t, "intruder@example.com")
	job := b.submit(t, ten.key, reviewJob("rita@example.com", "1h")).JobId
	b.awaitStatus(t, ten.key, job, "waiting")
	approvalEmail(t, fake, "rita@example.com")
	path := "/api/v1/jobs/" + job + "/approvals/review"
	for _, c := range []struct {
		name, key, path, body string
		want                  int
	}{
		{"another owner", other.key, path, `{"decision":"approve"}`, http.StatusNotFound},
		{"not an approval step", ten.key, "/api/v1/jobs/" + job + "/approvals/draft", `{"decision":"approve"}`, http.StatusNotFound},
		{"no such step", ten.key, "/api/v1/jobs/" + job + "/approvals/nope", `{"decision":"approve"}`, http.StatusNotFound},
		{"unknown decision", ten.key, path, `{"decision":"yes"}`, http.StatusBadRequest},
		{"unknown field", ten.key, path, `{"decision":"approve","approved":true}`, http.StatusBadRequest},
		{"no decision", ten.key, path, `{}`, http.StatusBadRequest},
		{"comment too long", ten.key, path, `{"decision":"approve","comment":"` + strings.Repeat("x", 2001) + `"}`, http.StatusBadRequest},
		{"bad step id", ten.key, "/api/v1/jobs/" + job + "/approvals/a.b", `{"decision":"approve"}`, http.StatusBadRequest},
	} {
		resp, body := b.do(t, "POST", c.path, hdr(c.key, "application/json"), strings.NewReader(c.body))
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.want, body)
			continue
		}
		problemOf(t, resp, body)
	}
	resp, body := b.do(t, "POST", path, hdr(ten.key, "application/json"), strings.NewReader(`{"decision":"reject","by":"ops","comment":"Not now."}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the owner rejects: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.do(t, "POST", path, hdr(ten.key, "application/json"), strings.NewReader(`{"decision":"approve"}`)); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second decision: %d %s", resp.StatusCode, body)
	}
	steps := b.awaitStatus(t, ten.key, job, "failed")
	if e, _ := steps[1]["error"].(map[string]any); steps[1]["status"] != "failed" || e["code"] != jobs.CodeApprovalRejected ||
		steps[1]["output"].(map[string]any)["via"] != "api" {
		t.Errorf("the rejected step: %v", steps[1])
	}

	for name, input := range map[string]map[string]any{
		"to and channel":    {"to": "a@example.com", "channel": "#x", "subject": "s"},
		"neither":           {"subject": "s"},
		"timeout too long":  {"to": "a@example.com", "subject": "s", "timeout": "800h"},
		"timeout too short": {"to": "a@example.com", "subject": "s", "timeout": 0.5},
		"unknown field":     {"to": "a@example.com", "subject": "s", "cc": "b@example.com"},
	} {
		body := map[string]any{"workflow": "bad", "payload": map[string]any{}, "steps": []any{step("review", "core", "approval", input)}}
		if resp, data := b.intake(t, ten.key, body, ""); resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("intake with an approval %s: %d %s, want 4xx", name, resp.StatusCode, data)
		}
	}
	each := step("review", "core", "approval", map[string]any{"to": "{{item}}", "subject": "s"})
	each["for_each"] = "{{payload.people}}"
	perItem := map[string]any{"workflow": "bad", "payload": map[string]any{"people": []string{"a@example.com"}}, "steps": []any{each}}
	if resp, data := b.intake(t, ten.key, perItem, ""); resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("intake with an approval per item: %d %s, want 4xx", resp.StatusCode, data)
	}
}
