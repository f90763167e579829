package jobs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	levqor "github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/slack"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi/resendtest"
	"github.com/levqor/levqor/store"
)

// approvalLink finds an approval link's token in a message.
var approvalLink = regexp.MustCompile(`/approvals/([A-Za-z0-9_-]+)`)

// fakeSlack answers chat.postMessage as Slack's Web API does (the bot token in an
// Authorization header or a token field) and keeps what was posted.
type fakeSlack struct {
	mu    sync.Mutex
	posts []map[string]string
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := r.ParseForm()
	authorized := r.Header.Get("Authorization") == "Bearer xoxb-approvals" || r.PostForm.Get("token") == "xoxb-approvals"
	if err != nil || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat.postMessage") || !authorized {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
		return
	}
	f.mu.Lock()
	f.posts = append(f.posts, map[string]string{"channel": r.PostForm.Get("channel"), "text": r.PostForm.Get("text")})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true,"channel":"C0APPROVE","ts":"1700000000.000100"}`))
}

func (f *fakeSlack) sent() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.posts...)
}

// approvalBundle is an engine whose approvals are mailed through a notifier to a
// fake Resend and posted to a fake Slack (owner "o1" has a Slack connection).
type approvalBundle struct {
	eng   *jobs.Engine
	st    store.Store
	mail  *resendtest.Server
	slack *fakeSlack
}

func startApprovals(t *testing.T, st store.Store, withMail bool) *approvalBundle {
	t.Helper()
	b := &approvalBundle{st: st, mail: resendtest.New(t, "re_approvals"), slack: &fakeSlack{}}
	opts := jobs.ApprovalOptions{Key: []byte("approval test key, 32 bytes long"), PublicURL: "https://levqor.example"}
	if withMail {
		n, err := notifier.New(notifier.Config{BaseURL: b.mail.URL, APIKey: "re_approvals", Domain: "levqor.example", PublicURL: "https://levqor.example"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close(context.Background()) })
		opts.Mail = n
	}
	srv := httptest.NewServer(b.slack)
	t.Cleanup(srv.Close)
	creds := connectortest.NewCredentials()
	creds.Set("o1", "slack", "", map[string]string{"token": "xoxb-approvals"})
	sl, err := slack.New(slack.Config{BaseURL: srv.URL + "/", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	b.eng = newEngine(t, jobs.Config{Store: st, Registry: mustRegistry(t, core.New(), sl), Approvals: opts,
		Worker: jobs.WorkerOptions{Lease: 5 * time.Second, Poll: 20 * time.Millisecond, RescueAtStart: st.Engine() == "sqlite"}})
	runEngine(t, b.eng)
	return b
}

// tokenTo waits for the approval email to `to` and returns its link's token.
func (b *approvalBundle) tokenTo(t *testing.T, to string) (string, resendtest.Email) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range b.mail.Sent() {
			if len(e.To) == 1 && e.To[0] == to {
				m := approvalLink.FindStringSubmatch(e.Text)
				if m == nil {
					t.Fatalf("the email to %s has no approval link:\n%s", to, e.Text)
				}
				return m[1], e
			}
		}
	}
	t.Fatalf("no approval email to %s within 10 s", to)
	return "", resendtest.Email{}
}

// approvalStep is a core.approval step.
func approvalStep(id, input string) jobs.StepState {
	return engineStep(id, "approval", input)
}

func decisionOf(t *testing.T, out json.RawMessage) jobs.Decision {
	t.Helper()
	var d jobs.Decision
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("decision %s: %v", out, err)
	}
	return d
}

// The case core.approval is built for: an AI draft reviewed by a person before it
// is sent. The request reaches the reviewer through Resend with a link; looking at
// it decides nothing; a post without the page's form token is refused; ten posts at
// once decide once; the job resumes and the step's output says who decided and
// when; the link is then spent. A tampered token is unknown, and one job's link
// cannot touch another job.
func TestApprovalApproved(t *testing.T) {
	for _, e := range bothEngines {
		t.Run(e.name, func(t *testing.T) {
			b := startApprovals(t, e.open(t), true)
			svc := b.eng.Service
			draft := "Dear ACME,\n\nthe fix ships on Monday <really>.\n\nBest"
			newReview := func(id, reviewer string) jobs.Job {
				j := newJob(id, "o1", echo("draft", `{"text":`+string(mustJSON(t, draft))+`}`),
					approvalStep("review", `{"to":"{{payload.reviewer}}","subject":"Send the reply to ACME?","message":"{{steps.draft.output.text}}","timeout":"1h"}`),
					echo("send", `{"text":"{{steps.draft.output.text}}","approved_by":"{{steps.review.output.by}}"}`))
				j.Payload = json.RawMessage(`{"reviewer":"` + reviewer + `"}`)
				return j
			}
			a, other := newReview("job_appr_a", "ana@example.com"), newReview("job_appr_b", "bo@example.com")
			insertJobs(t, b.st, a, other)
			started := time.Now()
			parked := waitStatus(t, b.st, a.ID, jobs.StatusWaiting)
			if st := parked.Steps[1]; st.Status != jobs.StepWaiting || st.WaitUntil == nil || st.WaitUntil.Sub(started) < 59*time.Minute {
				t.Fatalf("waiting approval step %+v", st)
			}
			waitStatus(t, b.st, other.ID, jobs.StatusWaiting)
			token, email := b.tokenTo(t, "ana@example.com")
			if email.Subject != "Approval needed: Send the reply to ACME?" || !strings.Contains(email.Text, draft) ||
				!strings.Contains(email.HTML, "the fix ships on Monday &lt;really&gt;.") || !strings.Contains(email.Text, "https://levqor.example/approvals/"+token) {
				t.Fatalf("approval email: subject %q\n%s", email.Subject, email.Text)
			}
			otherToken, _ := b.tokenTo(t, "bo@example.com")

			view, err := svc.Approval(t.Context(), token)
			if err != nil || view.Message != draft || view.Subject != "Send the reply to ACME?" || view.To != "ana@example.com" ||
				view.JobID != a.ID || view.FormToken == "" || !view.ExpiresAt.Equal(*parked.Steps[1].WaitUntil) {
				t.Fatalf("Approval = %+v, %v", view, err)
			}
			if _, err := svc.Approval(t.Context(), token); err != nil {
				t.Fatalf("a second look: %v", err)
			}
			if got := getJob(t, b.st, a.ID); got.Status != jobs.StatusWaiting {
				t.Fatalf("looking at the request changed the job: %s", got.Status)
			}
			flip := byte('A')
			if token[10] == 'A' {
				flip = 'B'
			}
			tampered := token[:10] + string(flip) + token[11:]
			for name, tok := range map[string]string{"tampered": tampered, "truncated": token[:len(token)-2], "foreign": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
				if _, err := svc.Approval(t.Context(), tok); levqor.ErrorCode(err) != levqor.ENotFound {
					t.Errorf("%s token: %v, want not found", name, err)
				}
				if _, err := svc.DecideByLink(t.Context(), tok, jobs.LinkDecision{Decision: "approve", FormToken: view.FormToken}); levqor.ErrorCode(err) != levqor.ENotFound {
					t.Errorf("%s token decides: %v, want not found", name, err)
				}
			}
			otherView, err := svc.Approval(t.Context(), otherToken)
			if err != nil {
				t.Fatal(err)
			}
			for name, d := range map[string]jobs.LinkDecision{
				"no form token":         {Decision: "approve"},
				"another form's token":  {Decision: "approve", FormToken: otherView.FormToken},
				"the token as its form": {Decision: "approve", FormToken: token},
			} {
				if _, err := svc.DecideByLink(t.Context(), token, d); levqor.ErrorCode(err) != levqor.EForbidden {
					t.Errorf("%s: %v, want forbidden", name, err)
				}
			}
			if _, err := svc.DecideByLink(t.Context(), token, jobs.LinkDecision{Decision: "maybe", FormToken: view.FormToken}); levqor.ErrorCode(err) != levqor.EInvalid {
				t.Errorf("decision maybe: %v, want invalid", err)
			}

			var wg sync.WaitGroup
			errs := make([]error, 10)
			decided := time.Now()
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = svc.DecideByLink(context.Background(), token, jobs.LinkDecision{Decision: "approve", FormToken: view.FormToken,
						Name: " Ana ", Comment: "Fine to send."})
				}()
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case levqor.ErrorCode(err) != levqor.EConflict:
					t.Fatalf("decision %d: %v, want conflict", i, err)
				}
			}
			if won != 1 {
				t.Fatalf("%d of 10 decisions applied, want 1: %v", won, errs)
			}
			got := waitTerminal(t, b.st, a.ID)
			if got.Status != jobs.StatusSucceeded {
				t.Fatalf("approved job %s (%s: %s)", got.Status, got.ErrorCode, got.ErrorMessage)
			}
			d := decisionOf(t, got.Steps[1].Output)
			if d.Decision != "approve" || !d.Approved || d.By != "ana@example.com" || d.Name != "Ana" || d.Comment != "Fine to send." ||
				d.Via != jobs.ViaEmail || d.DecidedAt.Before(decided.Add(-time.Second)) || d.DecidedAt.After(time.Now()) {
				t.Errorf("decision output %s", got.Steps[1].Output)
			}
			if !jsonEq(got.Result, `{"text":`+string(mustJSON(t, draft))+`,"approved_by":"ana@example.com"}`) {
				t.Errorf("the job's result %s", got.Result)
			}
			if _, err := svc.DecideByLink(t.Context(), token, jobs.LinkDecision{Decision: "reject", FormToken: view.FormToken}); levqor.ErrorCode(err) != levqor.EConflict {
				t.Errorf("a spent link: %v, want conflict", err)
			}
			if _, err := svc.Approval(t.Context(), token); levqor.ErrorCode(err) != levqor.EConflict || !strings.Contains(err.Error(), "approved already") {
				t.Errorf("looking at a spent link: %v, want conflict", err)
			}
			// The other job was not touched by the first job's link, and its owner
			// alone may decide it with a key.
			if got := getJob(t, b.st, other.ID); got.Status != jobs.StatusWaiting {
				t.Fatalf("the other job is %s, want still waiting", got.Status)
			}
			intruder := keys.Principal{OwnerID: "o2", KeyID: "key_o2", Scopes: []string{keys.ScopeJobsWrite}}
			if _, err := svc.DecideApproval(t.Context(), intruder, other.ID, "review", "approve", "", ""); levqor.ErrorCode(err) != levqor.ENotFound {
				t.Errorf("another owner decides: %v, want not found", err)
			}
			owner := keys.Principal{OwnerID: "o1", KeyID: "key_o1", Scopes: []string{keys.ScopeJobsWrite}}
			if _, err := svc.DecideApproval(t.Context(), owner, other.ID, "draft", "approve", "", ""); levqor.ErrorCode(err) != levqor.ENotFound {
				t.Errorf("deciding a step that is no approval: %v, want not found", err)
			}
			if _, err := svc.DecideApproval(t.Context(), owner, other.ID, "review", "approve", "ops-bot", "checked"); err != nil {
				t.Fatalf("the owner decides with a key: %v", err)
			}
			if _, err := svc.DecideApproval(t.Context(), owner, other.ID, "review", "reject", "", ""); levqor.ErrorCode(err) != levqor.EConflict {
				t.Errorf("deciding twice with a key: %v, want conflict", err)
			}
			if _, err := svc.DecideByLink(t.Context(), otherToken, jobs.LinkDecision{Decision: "reject", FormToken: otherView.FormToken}); levqor.ErrorCode(err) != levqor.EConflict {
				t.Errorf("the link after a decision by key: %v, want conflict", err)
			}
			got = waitTerminal(t, b.st, other.ID)
			d = decisionOf(t, got.Steps[1].Output)
			if got.Status != jobs.StatusSucceeded || d.Via != jobs.ViaAPI || d.KeyID != "key_o1" || d.By != "ops-bot" || d.Comment != "checked" {
				t.Errorf("decided by key: %s, output %s", got.Status, got.Steps[1].Output)
			}
			if n := len(b.mail.Sent()); n != 2 {
				t.Errorf("%d emails sent, want one per request", n)
			}
		})
	}
}

// Rejecting fails the step (code approval_rejected, the output still saying who and
// why) and the job; with continue_on_error the job goes on and a dependent can test
// the status. A link past its timeout is gone (410), and the step fails
// approval_timeout. A request to a Slack channel is posted as the owner's
// connection. Without email, an emailed request fails approval_undeliverable. A
// decision by key before the request is sent is kept, and no request is sent.
func TestApprovalRejectedExpiredSlack(t *testing.T) {
	for _, e := range bothEngines {
		t.Run(e.name, func(t *testing.T) {
			st := e.open(t)
			b := startApprovals(t, st, true)
			svc := b.eng.Service
			owner := keys.Principal{OwnerID: "o1", KeyID: "key_o1", Scopes: []string{keys.ScopeJobsWrite}}

			rejected := newJob("job_rej", "o1", approvalStep("review", `{"to":"rex@example.com","subject":"Go?"}`), echo("send", `{"x":1}`))
			goOn := newJob("job_rej_go", "o1", approvalStep("review", `{"to":"cora@example.com","subject":"Go?","timeout":3600}`),
				echo("fallback", `{"x":1}`), echo("send", `{"x":2}`))
			goOn.Steps[0].ContinueOnError = true
			goOn.Steps[1].Needs, goOn.Steps[1].If = &[]string{"review"}, "steps.review.status == 'failed'"
			goOn.Steps[2].Needs, goOn.Steps[2].If = &[]string{"review"}, "steps.review.status == 'succeeded'"
			expiring := newJob("job_exp", "o1", approvalStep("review", `{"to":"eve@example.com","subject":"Quick?","timeout":"3s"}`))
			viaSlack := newJob("job_slack", "o1", approvalStep("review", `{"channel":"#approvals","subject":"Deploy <prod>?","message":"v2 & friends"}`))
			early := newJob("job_early", "o1", engineStep("pause", "wait", `{"for":"1s"}`), approvalStep("review", `{"to":"early@example.com","subject":"Early?"}`))
			insertJobs(t, b.st, rejected, goOn, expiring, viaSlack, early)
			if _, err := svc.DecideApproval(t.Context(), owner, early.ID, "review", "approve", "", "decided before asking"); err != nil {
				t.Fatalf("a decision before the request: %v", err)
			}

			for _, to := range []string{"rex@example.com", "cora@example.com"} {
				token, _ := b.tokenTo(t, to)
				v, err := svc.Approval(t.Context(), token)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.DecideByLink(t.Context(), token, jobs.LinkDecision{Decision: "reject", FormToken: v.FormToken, Name: "Rex", Comment: "Wrong tone."}); err != nil {
					t.Fatalf("reject for %s: %v", to, err)
				}
			}
			got := waitTerminal(t, st, rejected.ID)
			d := decisionOf(t, got.Steps[0].Output)
			if got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeApprovalRejected || got.Steps[0].Status != jobs.StepFailed ||
				!strings.Contains(got.ErrorMessage, "Rejected by Rex (rex@example.com): Wrong tone.") || d.Approved || d.Decision != "reject" ||
				got.Steps[1].Status != jobs.StepPending {
				t.Errorf("rejected job %s %s %q, steps %+v", got.Status, got.ErrorCode, got.ErrorMessage, got.Steps)
			}
			got = waitTerminal(t, st, goOn.ID)
			if got.Status != jobs.StatusSucceeded || got.Steps[0].Status != jobs.StepFailed || got.Steps[1].Status != jobs.StepSucceeded || got.Steps[2].Status != jobs.StepSkipped {
				t.Errorf("rejected with continue_on_error: %s, steps %s %s %s", got.Status, got.Steps[0].Status, got.Steps[1].Status, got.Steps[2].Status)
			}

			token, _ := b.tokenTo(t, "eve@example.com")
			v, err := svc.Approval(t.Context(), token)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Until(v.ExpiresAt) + 50*time.Millisecond)
			if _, err := svc.Approval(t.Context(), token); levqor.ErrorCode(err) != levqor.EGone {
				t.Errorf("an expired link: %v, want gone", err)
			}
			if _, err := svc.DecideByLink(t.Context(), token, jobs.LinkDecision{Decision: "approve", FormToken: v.FormToken}); levqor.ErrorCode(err) != levqor.EGone {
				t.Errorf("deciding through an expired link: %v, want gone", err)
			}
			if got := waitTerminal(t, st, expiring.ID); got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeApprovalTimeout {
				t.Errorf("unanswered approval: %s %s, want failed %s", got.Status, got.ErrorCode, jobs.CodeApprovalTimeout)
			}

			waitStatus(t, st, viaSlack.ID, jobs.StatusWaiting)
			posts := b.slack.sent()
			if len(posts) != 1 || posts[0]["channel"] != "#approvals" || !strings.Contains(posts[0]["text"], "Deploy &lt;prod&gt;?") ||
				!strings.Contains(posts[0]["text"], "v2 &amp; friends") || !strings.Contains(posts[0]["text"], "https://levqor.example/approvals/") {
				t.Fatalf("slack posts %v", posts)
			}
			slackToken := approvalLink.FindStringSubmatch(posts[0]["text"])[1]
			sv, err := svc.Approval(t.Context(), slackToken)
			if err != nil || sv.To != "slack:#approvals" || sv.Message != "v2 & friends" {
				t.Fatalf("slack approval view %+v, %v", sv, err)
			}
			if _, err := svc.DecideByLink(t.Context(), slackToken, jobs.LinkDecision{Decision: "approve", FormToken: sv.FormToken}); err != nil {
				t.Fatal(err)
			}
			got = waitTerminal(t, st, viaSlack.ID)
			if d := decisionOf(t, got.Steps[0].Output); got.Status != jobs.StatusSucceeded || d.By != "slack:#approvals" || d.Via != jobs.ViaSlack {
				t.Errorf("approved in slack: %s, output %s", got.Status, got.Steps[0].Output)
			}

			got = waitTerminal(t, st, early.ID)
			if d := decisionOf(t, got.Steps[1].Output); got.Status != jobs.StatusSucceeded || d.Comment != "decided before asking" {
				t.Errorf("decided early: %s, output %s", got.Status, got.Steps[1].Output)
			}
			for _, e := range b.mail.Sent() {
				if e.To[0] == "early@example.com" {
					t.Error("a request was sent for a step decided before it ran")
				}
			}
		})
	}
}

// A server without email cannot send a request to an address: the step fails at
// once, code approval_undeliverable, and is not retried.
func TestApprovalWithoutEmail(t *testing.T) {
	for _, e := range bothEngines {
		t.Run(e.name, func(t *testing.T) {
			b := startApprovals(t, e.open(t), false)
			unsent := newJob("job_nomail", "o1", approvalStep("review", `{"to":"nobody@example.com","subject":"Anyone?"}`))
			unsent.MaxAttempts = 3
			insertJobs(t, b.st, unsent)
			got := waitTerminal(t, b.st, unsent.ID)
			if got.Status != jobs.StatusFailed || got.ErrorCode != jobs.CodeApprovalUndeliverable || got.Attempts != 1 || got.Steps[0].WaitUntil != nil {
				t.Errorf("no email: %s %s after %d attempts, want failed %s after 1", got.Status, got.ErrorCode, got.Attempts, jobs.CodeApprovalUndeliverable)
			}
		})
	}
}

func getJob(t *testing.T, st jobs.Store, id string) jobs.Job {
	t.Helper()
	j, err := st.GetJob(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
