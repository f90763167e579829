package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/outbound"
	"github.com/levqor/levqor/workflow"
)

// Limits of a job.
const (
	MaxPayloadBytes    = 200 << 10
	MaxSteps           = 50
	DefaultMaxAttempts = 3
	DefaultTimeoutS    = 60
)

// Service is the one place jobs are submitted, read, listed and canceled, and
// workflows and webhook secrets are managed. Non-admin principals see only their
// owner's jobs and workflows; anything else is "not found".
type Service struct {
	store  Store
	reg    *connectors.Registry
	guard  *outbound.Guard
	events *Hub
	wake   func() // tells this process's workers that a job is due now
	// reserve takes free worker slots for jobs handed over at intake (Worker.reserve).
	reserve func(n int) handover
	// queued tells this process's worker that intake queued n jobs due now.
	queued func(n int)
	// admit holds intake while this process's worker is too far behind (Worker.admit).
	admit func(ctx context.Context) error
	now   func() time.Time
	// budgets, when set, refuses jobs with AI steps for owners whose budget has no room.
	budgets *budget.Service
	// sealer seals webhook secrets at rest; nil (tests only) keeps them in clear.
	sealer    SecretSealer
	observe   Observer
	approvals *approvals // signs and checks approval links (set by NewEngine)
}

// newService returns a Service; budgets and sealer may be nil.
func newService(store Store, reg *connectors.Registry, guard *outbound.Guard, events *Hub, wake func(), budgets *budget.Service, sealer SecretSealer) *Service {
	return &Service{store: store, reg: reg, guard: guard, events: events, wake: wake, now: time.Now, budgets: budgets, sealer: sealer, observe: noObserver{}}
}

// Intake is a job submission as the API received it.
type Intake struct {
	Workflow    string
	Payload     json.RawMessage
	Steps       []Step // nil: run the owner's workflow of that name
	OnFailure   *Step  // with Steps: the step run once if the job fails
	Priority    string // low, normal (default), high
	RunAt       *time.Time
	MaxAttempts int // 0: DefaultMaxAttempts
	TimeoutS    int // 0: DefaultTimeoutS
	CallbackURL string
	Guardrails  json.RawMessage
	// IdempotencyKey, when set, makes the submission idempotent per API key;
	// BodyHash tells a repeat from a different request under the same key.
	IdempotencyKey string
	BodyHash       string
	// DryRun rehearses the job instead of running it (jobs/dryrun.go): stored
	// finished, with example outputs; it takes no idempotency key.
	DryRun bool
}

// HashBody is the idempotency fingerprint of a request body.
func HashBody(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func invalid(pointer, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &levqor.Error{Code: levqor.EInvalid, Message: msg, Fields: []levqor.FieldError{{Pointer: pointer, Detail: msg}}}
}

// refuse is a request that reads well but cannot be done (422), at a JSON pointer.
func refuse(pointer, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &levqor.Error{Code: levqor.EUnprocessable, Message: msg, Fields: []levqor.FieldError{{Pointer: pointer, Detail: msg}}}
}

// ownerOf is the owner a principal's new objects belong to ("" for bootstrap admins).
func ownerOf(p keys.Principal) string { return p.OwnerID }

// idemScope scopes idempotency keys to the API key that sent them.
func idemScope(p keys.Principal) string {
	if p.KeyID == "" {
		return "bootstrap"
	}
	return p.KeyID
}

var priorities = map[string]int{"": PriorityNormal, "low": PriorityLow, "normal": PriorityNormal, "high": PriorityHigh}

// PriorityName is the API name of a stored priority.
func PriorityName(p int) string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityHigh:
		return "high"
	}
	return "normal"
}

// Submit stores a job. It reports created=false when an idempotency key repeats
// an earlier submission (whose job it returns).
func (s *Service) Submit(ctx context.Context, p keys.Principal, in Intake) (Job, bool, error) {
	j, _, err := s.prepare(ctx, p, in, 0, nil)
	if err != nil {
		return Job{}, false, err
	}
	if in.DryRun {
		return s.submitDryRun(ctx, j)
	}
	return s.enqueue(ctx, j)
}

// enqueue stores j, a job to run. When its idempotency key was taken, it returns
// the job that holds it with created=false — or, when that job came from another
// request (another IdemHash), an error.
func (s *Service) enqueue(ctx context.Context, j Job) (Job, bool, error) {
	stored, err := s.insertJobs(ctx, []Job{j})
	if err != nil {
		return Job{}, false, fmt.Errorf("insert job: %w", err)
	}
	got := stored[0]
	if !got.Inserted {
		if got.Job.IdemHash != j.IdemHash {
			return Job{}, false, errIdemMismatch()
		}
		return got.Job, false, nil
	}
	return got.Job, true, nil
}

// insertJobs stores js in one transaction (Store.InsertJobs) and tells the
// observer and the worker about the new ones. Those due now are handed over to
// this process's worker while it has free slots and nothing due waits in the
// queue (Worker.reserve): they are stored running under its lease and start at
// once, without a claim statement (ADR 0023). js is changed.
func (s *Service) insertJobs(ctx context.Context, js []Job) ([]Inserted, error) {
	if s.admit != nil && slices.ContainsFunc(js, handable) {
		if err := s.admit(ctx); err != nil {
			return nil, err
		}
	}
	h := s.handOver(js)
	defer h.release()
	stored, err := s.store.InsertJobs(ctx, js)
	if err != nil {
		return nil, err
	}
	queued := 0
	for _, r := range stored {
		if !r.Inserted {
			continue
		}
		s.observe.JobEnqueued(r.Job.Workflow)
		switch {
		case r.Job.Status == StatusQueued:
			queued++
		case r.Job.Status == StatusRunning && h.slots > 0 && r.Job.LeaseToken == h.token:
			h.start(r.Job)
		}
	}
	if queued > 0 {
		s.queued(queued)
	}
	return stored, nil
}

// handOver marks as many of js's jobs due now as the worker has slots reserved
// for (Worker.reserve) to be stored running under its lease, and returns the
// reservation.
func (s *Service) handOver(js []Job) handover {
	if s.reserve == nil {
		return handover{}
	}
	due := 0
	for _, j := range js {
		if handable(j) {
			due++
		}
	}
	h := s.reserve(due)
	for i, k := 0, h.slots; i < len(js) && k > 0; i++ {
		if j := &js[i]; handable(*j) {
			at, until := h.at, h.leaseTo
			j.Status, j.Attempts, j.LeaseToken, j.LeaseExpiresAt, j.StartedAt = StatusRunning, 1, h.token, &until, &at
			k--
		}
	}
	return h
}

// handable reports whether j is due now, to run: intake may hand it over, and
// holds it while the worker is too far behind.
func handable(j Job) bool { return j.Status == StatusQueued && !j.DryRun }

func errIdemMismatch() error {
	return levqor.Errorf(levqor.EUnprocessable, "This Idempotency-Key was used with a different request body.")
}

// MaxBatch is how many jobs one SubmitBatch (POST /api/v1/intake/batch) takes.
const MaxBatch = 1000

// Submitted is one result of SubmitBatch: the job (Inserted false for an
// idempotent repeat), or Err, the client error that refused the item.
type Submitted struct {
	Job      Job
	Inserted bool
	Err      error
}

// SubmitBatch submits up to MaxBatch jobs for p: each item is checked as Submit
// checks it, and refused in its own slot (Submitted.Err, a client error); the
// others are stored in one transaction. The AI budget check is cumulative: an AI
// job must fit with the worst case of the batch's AI jobs accepted before it.
// Errors that are not the client's (a store or budget lookup failing) fail the
// whole batch, and nothing is stored.
func (s *Service) SubmitBatch(ctx context.Context, p keys.Principal, ins []Intake) ([]Submitted, error) {
	if len(ins) > MaxBatch {
		return nil, invalid("/jobs", "A batch has at most %d jobs.", MaxBatch)
	}
	out := make([]Submitted, len(ins))
	ok := make([]Job, 0, len(ins))
	at := make([]int, 0, len(ins)) // the slot of ok[k]
	var aiNeed budget.Nanos
	batch := &batchState{saved: map[string][]Step{}}
	for i, in := range ins {
		if in.DryRun {
			out[i].Err = refuse("/dry_run", "A batch takes no dry runs; rehearse a job with POST /api/v1/intake.")
			continue
		}
		j, need, err := s.prepare(ctx, p, in, aiNeed, batch)
		if err != nil {
			if !isClientError(err) {
				return nil, err
			}
			out[i].Err = err
			continue
		}
		aiNeed += need
		ok, at = append(ok, j), append(at, i)
	}
	stored, err := s.insertJobs(ctx, ok)
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
	for k, r := range stored {
		i := at[k]
		if !r.Inserted {
			if r.Job.IdemHash != ins[i].BodyHash {
				out[i].Err = errIdemMismatch()
				continue
			}
			out[i].Job = r.Job
			continue
		}
		out[i].Job, out[i].Inserted = r.Job, true
	}
	return out, nil
}

// isClientError reports whether err refuses a request (a 4xx) rather than
// reports a failure of the service.
func isClientError(err error) bool {
	switch levqor.ErrorCode(err) {
	case levqor.EInvalid, levqor.EUnprocessable, levqor.ENotFound, levqor.EBudgetExceeded:
		return true
	}
	return false
}

// batchState is what SubmitBatch's items share: the saved workflows read, by name,
// and the step list the last item's steps were found valid as (batches often
// repeat one step list; ValidateSteps depends on nothing else).
type batchState struct {
	saved map[string][]Step
	valid []Step
}

// prepare checks an intake and builds its job, not yet stored. aiBefore is the
// worst case of AI jobs accepted before it in the same batch, which must fit the
// budget together with this job's; need is this job's worst case (0 without AI
// steps or budgets). batch is nil outside SubmitBatch.
func (s *Service) prepare(ctx context.Context, p keys.Principal, in Intake, aiBefore budget.Nanos, batch *batchState) (j Job, need budget.Nanos, err error) {
	now := s.now().UTC()
	if len(in.Payload) > MaxPayloadBytes {
		return Job{}, 0, invalid("/payload", "payload is larger than %d bytes serialised.", MaxPayloadBytes)
	}
	prio, ok := priorities[in.Priority]
	if !ok {
		return Job{}, 0, invalid("/priority", "priority must be low, normal or high.")
	}
	steps := in.Steps
	var saved map[string][]Step
	if batch != nil {
		saved = batch.saved
	}
	if cached, ok := saved[in.Workflow]; ok && steps == nil {
		steps = cached
	} else if steps == nil {
		wf, err := s.store.GetWorkflow(ctx, ownerOf(p), in.Workflow)
		if levqor.ErrorCode(err) == levqor.ENotFound {
			return Job{}, 0, levqor.Errorf(levqor.ENotFound, "No workflow named %q; save it with PUT /api/v1/workflows/%s or send steps.", in.Workflow, in.Workflow)
		}
		if err != nil {
			return Job{}, 0, err
		}
		steps = wf.Steps
		if saved != nil {
			saved[in.Workflow] = steps
		}
	} else {
		steps = withOnFailure(steps, in.OnFailure)
		if batch == nil || !reflect.DeepEqual(steps, batch.valid) {
			if err := s.ValidateSteps(steps, "/steps"); err != nil {
				return Job{}, 0, err
			}
			if batch != nil {
				batch.valid = steps
			}
		}
	}
	if !in.DryRun { // a dry run spends nothing
		if need, err = s.fitBudget(ctx, ownerOf(p), steps, aiBefore); err != nil {
			return Job{}, 0, err
		}
	}
	if err := s.checkCallback(in.CallbackURL); err != nil {
		return Job{}, 0, err
	}
	j = Job{
		ID: levqor.NewID("job"), OwnerID: ownerOf(p), Workflow: in.Workflow, Status: StatusQueued, Priority: prio,
		RunAt: now, MaxAttempts: DefaultMaxAttempts, TimeoutS: DefaultTimeoutS, Payload: in.Payload,
		Guardrails: in.Guardrails, CallbackURL: in.CallbackURL, CreatedAt: now, UpdatedAt: now,
	}
	if in.RunAt != nil && in.RunAt.After(now) {
		j.Status, j.RunAt = StatusScheduled, in.RunAt.UTC()
	}
	if in.MaxAttempts > 0 {
		j.MaxAttempts = in.MaxAttempts
	}
	if in.TimeoutS > 0 {
		j.TimeoutS = in.TimeoutS
	}
	for _, st := range steps {
		j.Steps = append(j.Steps, StepState{Step: st, Status: StepPending})
	}
	if in.IdempotencyKey != "" && !in.DryRun {
		j.IdemScope, j.IdemKey, j.IdemHash = idemScope(p), in.IdempotencyKey, in.BodyHash
	}
	return j, need, nil
}

// fitBudget checks that the worst case of steps' AI calls, with aiBefore (accepted
// before them in the same request), fits the owner's budget, and returns that
// worst case (0 without AI steps or budgets).
func (s *Service) fitBudget(ctx context.Context, owner string, steps []Step, aiBefore budget.Nanos) (budget.Nanos, error) {
	if s.budgets == nil || !hasAISteps(steps) {
		return 0, nil
	}
	need := s.leastCost(steps)
	if err := s.budgets.CheckFit(ctx, owner, aiBefore+need); err != nil {
		return 0, err
	}
	return need, nil
}

// checkCallback refuses a callback URL the outbound guard would not call.
func (s *Service) checkCallback(url string) error {
	if url == "" {
		return nil
	}
	if err := s.guard.CheckURL(url); err != nil {
		return invalid("/callback_url", "callback_url is not allowed: %s", err.Error())
	}
	return nil
}

// withOnFailure is steps with the on_failure step, if any, last (marked as such).
func withOnFailure(steps []Step, onFailure *Step) []Step {
	if onFailure == nil {
		return steps
	}
	of := *onFailure
	of.OnFailure = true
	return append(slices.Clip(steps), of)
}

// ValidateSteps checks a step list (its on_failure step, if any, last): the
// workflow language's rules (workflow.Parse: ids, needs, references, expressions,
// levqor.EUnprocessable), known connectors and actions, literal inputs that fit
// their schemas, and no secrets that belong in a connection (levqor.EUnprocessable).
func (s *Service) ValidateSteps(steps []Step, pointer string) error {
	n := len(steps)
	if n > 0 && steps[n-1].OnFailure {
		n--
	}
	if n == 0 || n > MaxSteps {
		return invalid(pointer, "A workflow has 1 to %d steps.", MaxSteps)
	}
	g, err := workflow.Parse(steps, pointer)
	if err != nil {
		return err
	}
	for i, st := range steps {
		at := workflow.Pointer(pointer, steps, i)
		input := st.Input
		if len(input) == 0 {
			input = json.RawMessage("{}")
		}
		refs := g.InputRefs(i) // Parse has read them, and refused malformed ones
		if ptr, msg := s.reg.InputSecret(st.Connector, st.Action, input); msg != "" {
			// Refused, not redacted: a redacted value could not be sent, and the record
			// (API, webhooks, backups) must never hold it.
			return &levqor.Error{Code: levqor.EUnprocessable, Message: msg,
				Fields: []levqor.FieldError{{Pointer: at + "/input" + ptr, Detail: msg}}}
		}
		if engineStep(st) {
			if err := checkEngineStep(st, input); err != nil {
				return invalid(at, "%s", err.Error())
			}
		}
		if len(refs) > 0 {
			// Inputs with references are checked when the step runs, once resolved.
			if _, err := s.reg.InputSchema(st.Connector, st.Action); err != nil { // the connector and action exist
				return invalid(at, "%s", stepMessage(err))
			}
			continue
		}
		if err := s.reg.Validate(st.Connector, st.Action, input); err != nil {
			return invalid(at, "%s", stepMessage(err))
		}
	}
	return nil
}

// leastCost is what the steps' first provider calls may cost at worst, summed: a job
// whose owner cannot reserve this much would fail budget_exceeded. A step that cannot
// be estimated (say, a model without a price) counts 0 here and fails when it runs.
func (s *Service) leastCost(steps []Step) budget.Nanos {
	var need budget.Nanos
	for _, st := range steps {
		input := st.Input
		if len(input) == 0 {
			input = json.RawMessage("{}")
		}
		if usd, err := s.reg.EstimateUSD(st.Connector, st.Action, input); err == nil {
			need = need.Add(budget.USDToNanos(usd)) // saturates: a huge estimate must not wrap into a small one
		}
	}
	return need
}

// aiConnector names the connector whose calls cost money.
const aiConnector = "ai"

func hasAISteps(steps []Step) bool {
	for _, st := range steps {
		if st.Connector == aiConnector {
			return true
		}
	}
	return false
}

func stepMessage(err error) string {
	var se *connectors.StepError
	if errors.As(err, &se) {
		return se.Message
	}
	return "invalid step"
}

// visible returns the job if p may see it, else a not-found error.
func (s *Service) visible(ctx context.Context, p keys.Principal, id string) (Job, error) {
	j, err := s.store.GetJob(ctx, id)
	if err != nil {
		return Job{}, err
	}
	if !p.Admin() && j.OwnerID != p.OwnerID {
		return Job{}, levqor.Errorf(levqor.ENotFound, "Job not found.")
	}
	return j, nil
}

// Get returns a job the principal may see.
func (s *Service) Get(ctx context.Context, p keys.Principal, id string) (Job, error) {
	return s.visible(ctx, p, id)
}

// ListQuery selects jobs; Cursor is the opaque next_cursor of a previous page.
type ListQuery struct {
	Status, Workflow            string
	CreatedAfter, CreatedBefore *time.Time
	Limit                       int
	Cursor                      string
}

type cursor struct {
	T  time.Time `json:"t"`
	ID string    `json:"i"`
}

// List returns a page of the principal's jobs (every job for admins), newest
// first, and the cursor of the next page ("" on the last).
func (s *Service) List(ctx context.Context, p keys.Principal, q ListQuery) ([]Job, string, error) {
	f := ListFilter{AllOwners: p.Admin(), OwnerID: p.OwnerID, Status: q.Status, Workflow: q.Workflow, Limit: q.Limit}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	if q.CreatedAfter != nil {
		f.CreatedAfter = q.CreatedAfter.UTC()
	}
	if q.CreatedBefore != nil {
		f.CreatedBefore = q.CreatedBefore.UTC()
	}
	if q.Cursor != "" {
		var c cursor
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || json.Unmarshal(b, &c) != nil || c.ID == "" {
			return nil, "", invalid("query.cursor", "The cursor is not one this API returned.")
		}
		f.CursorCreatedAt, f.CursorID = c.T, c.ID
	}
	// The page may end before the limit, at MaxListPageBytes: the cursor leads on.
	list, more, err := s.store.ListJobs(ctx, f)
	if err != nil {
		return nil, "", err
	}
	if !more || len(list) == 0 {
		return list, "", nil
	}
	last := list[len(list)-1]
	b, _ := json.Marshal(cursor{T: last.CreatedAt, ID: last.ID})
	return list, base64.RawURLEncoding.EncodeToString(b), nil
}

// Cancel cancels a job that has not finished: at once when it is not running,
// by interrupting its step when it is (the job then ends canceled).
func (s *Service) Cancel(ctx context.Context, p keys.Principal, id string) (Job, error) {
	j, err := s.visible(ctx, p, id)
	if err != nil {
		return Job{}, err
	}
	if Terminal(j.Status) {
		return Job{}, levqor.Errorf(levqor.EConflict, "The job already ended %s.", j.Status)
	}
	now := s.now().UTC()
	got, ok, err := s.store.CancelQueued(ctx, id, now)
	if err != nil {
		return Job{}, err
	}
	if ok {
		s.events.Publish(id)
		return got, nil
	}
	if got, ok, err = s.store.RequestCancel(ctx, id, now); err != nil {
		return Job{}, err
	}
	if ok {
		s.events.Cancel(id) // this process may be running it: stop it now (others hear it on their heartbeat)
		return got, nil
	}
	// It finished between the read and the update.
	return Job{}, levqor.Errorf(levqor.EConflict, "The job already ended.")
}

// PutWorkflow validates and saves a workflow of the principal's owner; its
// on_failure step, if any, is kept last in its steps.
func (s *Service) PutWorkflow(ctx context.Context, p keys.Principal, name, description string, steps []Step, onFailure *Step) (Workflow, error) {
	steps = withOnFailure(steps, onFailure)
	if err := s.ValidateSteps(steps, "/steps"); err != nil {
		return Workflow{}, err
	}
	now := s.now().UTC()
	return s.store.PutWorkflow(ctx, Workflow{OwnerID: ownerOf(p), Name: name, Description: description, Steps: steps, CreatedAt: now, UpdatedAt: now})
}

// GetWorkflow returns a workflow of the principal's owner.
func (s *Service) GetWorkflow(ctx context.Context, p keys.Principal, name string) (Workflow, error) {
	return s.store.GetWorkflow(ctx, ownerOf(p), name)
}

// ListWorkflows returns the principal's owner's workflows.
func (s *Service) ListWorkflows(ctx context.Context, p keys.Principal) ([]Workflow, error) {
	return s.store.ListWorkflows(ctx, ownerOf(p))
}

// DeleteWorkflow deletes a workflow of the principal's owner.
func (s *Service) DeleteWorkflow(ctx context.Context, p keys.Principal, name string) error {
	return s.store.DeleteWorkflow(ctx, ownerOf(p), name)
}

// Catalogue lists the connectors, their actions and input schemas.
func (s *Service) Catalogue() []connectors.CatalogueEntry { return s.reg.Catalogue() }

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// WebhookSecret returns the owner's webhook signing secret, creating it on first use.
// It is stored sealed (see SecretSealer) and shown to its owner in clear.
func (s *Service) WebhookSecret(ctx context.Context, p keys.Principal) (WebhookSecret, error) {
	fresh, err := newWebhookSecret(s.sealer, ownerOf(p), s.now())
	if err != nil {
		return WebhookSecret{}, err
	}
	got, err := s.store.WebhookSecret(ctx, ownerOf(p), fresh)
	if err != nil {
		return WebhookSecret{}, err
	}
	return openWebhookSecret(s.sealer, got)
}

// RollWebhookSecret replaces the owner's webhook signing secret.
func (s *Service) RollWebhookSecret(ctx context.Context, p keys.Principal) (WebhookSecret, error) {
	fresh, err := newWebhookSecret(s.sealer, ownerOf(p), s.now())
	if err != nil {
		return WebhookSecret{}, err
	}
	got, err := s.store.PutWebhookSecret(ctx, fresh)
	if err != nil {
		return WebhookSecret{}, err
	}
	return openWebhookSecret(s.sealer, got)
}

// Signal delivers the signal name (data: JSON, at most MaxSignalBytes) to a job of
// the principal's owner that has a core.wait_for_signal step for it which has not
// ended: stored once and the job woken. A job with no such step, or one that got
// this signal already, is a conflict (409): a delivery is applied once.
func (s *Service) Signal(ctx context.Context, p keys.Principal, id, name string, data json.RawMessage) (Job, error) {
	if len(data) > MaxSignalBytes {
		return Job{}, levqor.Errorf(levqor.ETooLarge, "A signal's data is at most %d bytes.", MaxSignalBytes)
	}
	if !json.Valid(data) {
		return Job{}, levqor.Errorf(levqor.EInvalid, "A signal's data must be JSON.")
	}
	j, err := s.visible(ctx, p, id)
	if err != nil {
		return Job{}, err
	}
	cond, ok := awaitsSignal(j, name)
	if Terminal(j.Status) || !ok {
		return Job{}, levqor.Errorf(levqor.EConflict, "The job is not waiting for the signal %q.", name)
	}
	if cond != "" {
		// Refused, not stored: the step keeps waiting for a signal that meets its `if`.
		match, err := workflow.SignalCond(cond, data)
		if err != nil {
			return Job{}, levqor.Errorf(levqor.EUnprocessable, "The signal's data cannot be checked against the step's condition: %s", err.Error())
		}
		if !match {
			return Job{}, levqor.Errorf(levqor.EUnprocessable, "The signal's data does not meet the step's condition.")
		}
	}
	ok, err = s.store.DeliverSignal(ctx, id, name, data, s.now().UTC())
	if err != nil {
		return Job{}, err
	}
	if !ok {
		return Job{}, levqor.Errorf(levqor.EConflict, "The signal %q was delivered to this job already.", name)
	}
	s.wake()
	s.events.Publish(id)
	return s.store.GetJob(ctx, id)
}

// awaitsSignal reports whether job j has a core.wait_for_signal step for name that
// has not ended (it may not have started yet: the signal is kept until it runs),
// and that step's `if`.
func awaitsSignal(j Job, name string) (cond string, ok bool) {
	for _, st := range j.Steps {
		if !engineStep(st.Step) || st.Action != "wait_for_signal" {
			continue
		}
		if st.Status == StepSucceeded || st.Status == StepSkipped {
			continue // a failed one runs again when the job retries
		}
		var in struct {
			Name string `json:"name"`
			If   string `json:"if"`
		}
		if json.Unmarshal(st.Input, &in) == nil && in.Name == name {
			return in.If, true
		}
	}
	return "", false
}
