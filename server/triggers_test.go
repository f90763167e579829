package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/store/storetest"
	"github.com/levqor/levqor/triggers"
)

// withTriggers builds the job engine and the triggers service over the test's store.
func withTriggers(t *testing.T) func(*testOptions) {
	return func(o *testOptions) {
		e := newEngine(t, o.Store, o.Logger)
		o.Jobs, o.Hub = e.Service, e.Hub
		o.Triggers = triggers.NewService(o.Store, e.Service, credentials.NewService(o.Store, testSecretKey, nil))
	}
}

// saveWorkflow saves tenant's workflow "sync" (one core.echo step).
func saveWorkflow(t *testing.T, b *bundle, key string) {
	t.Helper()
	body := `{"steps":[{"id":"echo","connector":"core","action":"echo","input":{"message":"{{payload.msg}}"}}]}`
	resp, data := b.do(t, "PUT", "/api/v1/workflows/sync", hdr(key, "application/json"), strings.NewReader(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT workflow: %d %s", resp.StatusCode, data)
	}
}

// jobCount is how many job rows of workflow sync the owner has, read from the store.
func jobCount(t *testing.T, b *bundle, owner string) int {
	t.Helper()
	list, _, err := b.Store.ListJobs(t.Context(), jobs.ListFilter{OwnerID: owner, Workflow: "sync", Limit: 500})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	return len(list)
}

func TestSchedulesAPI(t *testing.T) {
	b := setup(t, withAdmin, withTriggers(t))
	ann, bob := b.newTenant(t, "ann@example.com"), b.newTenant(t, "bob@example.com")
	saveWorkflow(t, b, ann.key)
	put := func(key, path, body string) (*http.Response, []byte) {
		return b.do(t, "PUT", path, hdr(key, "application/json"), strings.NewReader(body))
	}
	for _, c := range []struct{ body, pointer string }{
		{`{"cron":"not a cron"}`, "/cron"},
		{`{"cron":"0 0 31 2 * *"}`, "/cron"},
		{`{"cron":"@every 1s"}`, "/cron"},
		{`{"cron":"0 7 * * *","time_zone":"Europe/Atlantis"}`, "/time_zone"},
		{`{"cron":"0 7 * * *","time_zone":"Local"}`, "/time_zone"},
	} {
		resp, data := put(ann.key, "/api/v1/workflows/sync/schedules/morning", c.body)
		p := problemOf(t, resp, data)
		if resp.StatusCode != http.StatusUnprocessableEntity || p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Pointer != c.pointer {
			t.Errorf("PUT %s: %d %s, want 422 at %s", c.body, resp.StatusCode, data, c.pointer)
		}
	}
	// The spec bounds the rest (400 from the validator).
	for _, body := range []string{`{"cron":"0 7 * * *","misfire_policy":"often"}`, `{"cron":"0 7 * * *","misfire_grace_s":0}`, `{"cron":"0 7 * * *","extra":1}`, `{}`} {
		if resp, data := put(ann.key, "/api/v1/workflows/sync/schedules/morning", body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %s, want 400", body, resp.StatusCode, data)
		}
	}
	if resp, data := put(ann.key, "/api/v1/workflows/nope/schedules/morning", `{"cron":"0 7 * * *"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("schedule of a missing workflow: %d %s", resp.StatusCode, data)
	}

	resp, data := put(ann.key, "/api/v1/workflows/sync/schedules/morning",
		`{"cron":"0 7 * * 1-5","time_zone":"Europe/Berlin","payload":{"msg":"gm"},"misfire_policy":"run_once","misfire_grace_s":600}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT schedule: %d %s", resp.StatusCode, data)
	}
	var sch struct {
		ID            string          `json:"id"`
		TimeZone      string          `json:"time_zone"`
		Payload       json.RawMessage `json:"payload"`
		Enabled       bool            `json:"enabled"`
		MisfireGraceS int             `json:"misfire_grace_s"`
		NextRuns      []time.Time     `json:"next_runs"`
	}
	if err := json.Unmarshal(data, &sch); err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if len(sch.NextRuns) != triggers.NextRuns || !sch.Enabled || sch.MisfireGraceS != 600 || sch.TimeZone != "Europe/Berlin" {
		t.Fatalf("schedule %s", data)
	}
	for _, r := range sch.NextRuns {
		if l := r.In(berlin); l.Hour() != 7 || l.Minute() != 0 || l.Weekday() == time.Saturday || l.Weekday() == time.Sunday {
			t.Errorf("next run %s is not 07:00 on a weekday in Berlin", l)
		}
	}
	resp, data = b.do(t, "GET", "/api/v1/workflows/sync/schedules/morning", hdr(ann.key, ""), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"next_runs":["`) {
		t.Errorf("GET schedule: %d %s", resp.StatusCode, data)
	}
	resp, data = b.do(t, "GET", "/api/v1/workflows/sync/schedules", hdr(ann.key, ""), nil)
	if resp.StatusCode != http.StatusOK || strings.Count(string(data), `"id":"morning"`) != 1 {
		t.Errorf("list schedules: %d %s", resp.StatusCode, data)
	}
	// Another owner sees nothing of it.
	if resp, data := b.do(t, "GET", "/api/v1/workflows/sync/schedules/morning", hdr(bob.key, ""), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another owner's GET: %d %s", resp.StatusCode, data)
	}
	if resp, data := b.do(t, "DELETE", "/api/v1/workflows/sync/schedules/morning", hdr(bob.key, ""), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another owner's DELETE: %d %s", resp.StatusCode, data)
	}
	if resp, data := b.do(t, "DELETE", "/api/v1/workflows/sync/schedules/morning", hdr(ann.key, ""), nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", resp.StatusCode, data)
	}
	if resp, _ := b.do(t, "GET", "/api/v1/workflows/sync/schedules/morning", hdr(ann.key, ""), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", resp.StatusCode)
	}
}

type triggerSecret struct {
	TriggerID string `json:"trigger_id"`
	URL       string `json:"url"`
	Secret    string `json:"secret"`
}

// sendHook posts body to /hooks/{id} with a signature header (none when "").
func sendHook(t *testing.T, b *bundle, id, contentType, signature, delivery string, body []byte) (*http.Response, []byte) {
	t.Helper()
	h := hdr("", contentType)
	if signature != "" {
		h.Set("Levqor-Signature", signature)
	}
	if delivery != "" {
		h.Set("Levqor-Delivery", delivery)
	}
	return b.do(t, "POST", "/hooks/"+id, h, strings.NewReader(string(body)))
}

// Inbound webhooks on both engines: a signed delivery starts a job with its body as
// payload; any authentication failure is 401 and stores nothing; hostile bodies
// are 4xx, never 5xx; deliveries are idempotent on Levqor-Delivery; roll and delete
// revoke the old secret.
func TestInboundHooks(t *testing.T) {
	for engine, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(o *testOptions) { o.Store = open(t) }, withAdmin, withTriggers(t))
			ann, bob := b.newTenant(t, "ann@example.com"), b.newTenant(t, "bob@example.com")
			saveWorkflow(t, b, ann.key)

			resp, data := b.do(t, "POST", "/api/v1/workflows/sync/triggers", hdr(ann.key, ""), nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create trigger: %d %s", resp.StatusCode, data)
			}
			var tr triggerSecret
			if err := json.Unmarshal(data, &tr); err != nil || tr.Secret == "" || tr.URL != "/hooks/"+tr.TriggerID {
				t.Fatalf("trigger %s (%v)", data, err)
			}
			// The secret is shown once: the list never holds it.
			resp, data = b.do(t, "GET", "/api/v1/workflows/sync/triggers", hdr(ann.key, ""), nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), tr.TriggerID) || strings.Contains(string(data), tr.Secret) || strings.Contains(string(data), `"secret"`) {
				t.Fatalf("list triggers: %d %s", resp.StatusCode, data)
			}
			if resp, data := b.do(t, "GET", "/api/v1/workflows/sync/triggers", hdr(bob.key, ""), nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("another owner lists: %d %s", resp.StatusCode, data)
			}

			body := []byte(`{"msg": "push", "ref": "refs/heads/main"}` + "\n")
			now := time.Now()
			resp, data = sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(tr.Secret, now, body), "", body)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("signed delivery: %d %s", resp.StatusCode, data)
			}
			var acc struct {
				JobID string `json:"job_id"`
			}
			_ = json.Unmarshal(data, &acc)
			if resp.Header.Get("Location") != "/api/v1/jobs/"+acc.JobID {
				t.Errorf("Location %q for job %s", resp.Header.Get("Location"), acc.JobID)
			}
			resp, data = b.do(t, "GET", "/api/v1/jobs/"+acc.JobID, hdr(ann.key, ""), nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"ref":"refs/heads/main"`) {
				t.Fatalf("the job: %d %s", resp.StatusCode, data)
			}
			if n := jobCount(t, b, ann.owner); n != 1 {
				t.Fatalf("%d jobs after one delivery", n)
			}

			// Authentication failures: 401, nothing stored.
			ts := strconv.FormatInt(now.Unix(), 10)
			bad := []struct{ name, id, sig string }{
				{"no signature", tr.TriggerID, ""},
				{"wrong secret", tr.TriggerID, triggers.Sign("trsec_wrong", now, body)},
				{"other body", tr.TriggerID, triggers.Sign(tr.Secret, now, []byte(`{"msg":"other"}`))},
				{"stale", tr.TriggerID, triggers.Sign(tr.Secret, now.Add(-6*time.Minute), body)},
				{"future", tr.TriggerID, triggers.Sign(tr.Secret, now.Add(6*time.Minute), body)},
				{"no t", tr.TriggerID, "v1=" + strings.Split(triggers.Sign(tr.Secret, now, body), "v1=")[1]},
				{"t swapped", tr.TriggerID, strings.Replace(triggers.Sign(tr.Secret, now, body), "t="+ts, "t="+strconv.FormatInt(now.Unix()+1, 10), 1)},
				{"two t", tr.TriggerID, "t=1," + triggers.Sign(tr.Secret, now, body)},
				{"garbage", tr.TriggerID, "t=,v1=,,==,"},
				{"unknown trigger", "trg_0000000000000000000000", triggers.Sign(tr.Secret, now, body)},
			}
			for _, c := range bad {
				resp, data := sendHook(t, b, c.id, "application/json", c.sig, "", body)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: %d %s, want 401", c.name, resp.StatusCode, data)
				} else {
					problemOf(t, resp, data)
				}
			}
			if n := jobCount(t, b, ann.owner); n != 1 {
				t.Fatalf("%d jobs after refused deliveries, want still 1", n)
			}

			// Hostile bodies, correctly signed: 4xx, never 5xx, nothing stored.
			deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
			big := `{"msg":"` + strings.Repeat("x", 210<<10) + `"}`
			hostile := []struct{ name, contentType, body string }{
				{"array", "application/json", `[1,2]`},
				{"scalar", "application/json", `"x"`},
				{"not JSON", "application/json", `{"msg":`},
				{"trailing", "application/json", `{"msg":1} {"msg":2}`},
				{"too deep", "application/json", deep},
				{"too large", "application/json", big},
				{"plain text", "text/plain", `{"msg":1}`},
				{"NUL", "application/json", `{"msg":"a\u0000b"}`},
				{"invalid UTF-8", "application/json", "{\"msg\":\"\xff\xfe\"}"},
			}
			for _, c := range hostile {
				resp, data := sendHook(t, b, tr.TriggerID, c.contentType, triggers.Sign(tr.Secret, now, []byte(c.body)), "", []byte(c.body))
				if resp.StatusCode < 400 || resp.StatusCode >= 500 {
					// A NUL escape in free-form JSON is accepted (stored as U+FFFD, see TestNULInText).
					if resp.StatusCode != http.StatusAccepted || c.name != "NUL" {
						t.Errorf("%s: %d %.200s, want 4xx", c.name, resp.StatusCode, data)
					}
				}
			}
			accepted := jobCount(t, b, ann.owner) - 1 // the NUL escape may be accepted
			if accepted > 1 {
				t.Fatalf("%d hostile deliveries stored", accepted)
			}

			// Idempotent on Levqor-Delivery: the same id and body give the same job; the
			// same id with another body is 422.
			before := jobCount(t, b, ann.owner)
			r1, d1 := sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(tr.Secret, now, body), "dlv-1", body)
			r2, d2 := sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(tr.Secret, now.Add(time.Second), body), "dlv-1", body)
			var j1, j2 struct {
				JobID string `json:"job_id"`
			}
			_ = json.Unmarshal(d1, &j1)
			_ = json.Unmarshal(d2, &j2)
			if r1.StatusCode != http.StatusAccepted || r2.StatusCode != http.StatusAccepted || j1.JobID == "" || j1.JobID != j2.JobID {
				t.Errorf("repeated delivery: %d %s / %d %s, want one job", r1.StatusCode, d1, r2.StatusCode, d2)
			}
			other := []byte(`{"msg":"different"}`)
			if resp, data := sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(tr.Secret, now, other), "dlv-1", other); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("same delivery id, other body: %d %s, want 422", resp.StatusCode, data)
			}
			if n := jobCount(t, b, ann.owner); n != before+1 {
				t.Errorf("%d jobs after a repeated delivery, want %d", n, before+1)
			}

			// Roll: the old secret stops working, the new one works.
			resp, data = b.do(t, "POST", "/api/v1/workflows/sync/triggers/"+tr.TriggerID+"/roll", hdr(ann.key, ""), nil)
			var rolled triggerSecret
			if err := json.Unmarshal(data, &rolled); resp.StatusCode != http.StatusOK || err != nil || rolled.Secret == tr.Secret || rolled.Secret == "" {
				t.Fatalf("roll: %d %s", resp.StatusCode, data)
			}
			if resp, _ := sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(tr.Secret, now, body), "", body); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("old secret after roll: %d, want 401", resp.StatusCode)
			}
			if resp, data := sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(rolled.Secret, now, body), "", body); resp.StatusCode != http.StatusAccepted {
				t.Errorf("new secret after roll: %d %s", resp.StatusCode, data)
			}
			// Another owner cannot roll or delete it.
			for _, m := range []struct{ method, path string }{{"POST", "/roll"}, {"DELETE", ""}} {
				if resp, data := b.do(t, m.method, "/api/v1/workflows/sync/triggers/"+tr.TriggerID+m.path, hdr(bob.key, ""), nil); resp.StatusCode != http.StatusNotFound {
					t.Errorf("another owner's %s: %d %s", m.method, resp.StatusCode, data)
				}
			}
			// Delete: deliveries are refused.
			if resp, data := b.do(t, "DELETE", "/api/v1/workflows/sync/triggers/"+tr.TriggerID, hdr(ann.key, ""), nil); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("delete: %d %s", resp.StatusCode, data)
			}
			if resp, _ := sendHook(t, b, tr.TriggerID, "application/json", triggers.Sign(rolled.Secret, now, body), "", body); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("delivery after delete: %d, want 401", resp.StatusCode)
			}
		})
	}
}

// A workflow has at most MaxTriggersPerWorkflow triggers.
func TestTriggerLimit(t *testing.T) {
	b := setup(t, withAdmin, withTriggers(t))
	ann := b.newTenant(t, "ann@example.com")
	saveWorkflow(t, b, ann.key)
	for i := range triggers.MaxTriggersPerWorkflow + 1 {
		resp, data := b.do(t, "POST", "/api/v1/workflows/sync/triggers", hdr(ann.key, ""), nil)
		want := http.StatusCreated
		if i == triggers.MaxTriggersPerWorkflow {
			want = http.StatusConflict
		}
		if resp.StatusCode != want {
			t.Fatalf("trigger %d: %d %s, want %d", i+1, resp.StatusCode, data, want)
		}
	}
}

// Each trigger has the per-key budget (LEVQOR_RATE_LIMIT_KEY), spent only by
// deliveries whose signature verifies: a flood of unsigned requests cannot use it up.
func TestInboundHookRateLimit(t *testing.T) {
	b := setup(t, withAdmin, withTriggers(t), func(o *testOptions) {
		o.Limits = &server.Limits{IP: limiter.Rate{Period: time.Minute, Limit: 1000}, Global: limiter.Rate{Period: time.Minute, Limit: 1000},
			Key: limiter.Rate{Period: time.Minute, Limit: 3}, Store: memory.NewStore()}
	})
	ann := b.newTenant(t, "ann@example.com")
	saveWorkflow(t, b, ann.key)
	newTrigger := func() triggerSecret {
		resp, data := b.do(t, "POST", "/api/v1/workflows/sync/triggers", hdr(ann.key, ""), nil)
		var tr triggerSecret
		if err := json.Unmarshal(data, &tr); resp.StatusCode != http.StatusCreated || err != nil {
			t.Fatalf("create trigger: %d %s", resp.StatusCode, data)
		}
		return tr
	}
	one, two := newTrigger(), newTrigger()
	body := []byte(`{"msg":"x"}`)
	for range 5 {
		if resp, _ := sendHook(t, b, one.TriggerID, "application/json", "t=1,v1=00", "", body); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned delivery: %d, want 401", resp.StatusCode)
		}
	}
	for i := range 4 {
		resp, data := sendHook(t, b, one.TriggerID, "application/json", triggers.Sign(one.Secret, time.Now(), body), "", body)
		want := http.StatusAccepted
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("signed delivery %d: %d %s, want %d", i+1, resp.StatusCode, data, want)
		}
		if want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if n := jobCount(t, b, ann.owner); n != 3 {
		t.Errorf("%d jobs, want 3 (the refused delivery stores nothing)", n)
	}
	// Another trigger has its own budget.
	if resp, data := sendHook(t, b, two.TriggerID, "application/json", triggers.Sign(two.Secret, time.Now(), body), "", body); resp.StatusCode != http.StatusAccepted {
		t.Errorf("other trigger: %d %s", resp.StatusCode, data)
	}
}
