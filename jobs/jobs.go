// Package jobs is Levqor's job engine: a job's record, which is also its place in the
// queue (one jobs table, one state machine), intake with idempotency, workers that
// claim due jobs under leases and run their steps through connectors, cancellation,
// events, and signed completion webhooks.
package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/levqor/levqor/workflow"
)

// Job statuses. queued/scheduled/retrying are due when run_at has come; running
// holds a lease; waiting is parked by a core.wait or core.wait_for_signal step
// (no worker, no lease) and due again at run_at, its wake time; succeeded, failed
// and canceled are terminal.
const (
	StatusQueued    = "queued"
	StatusScheduled = "scheduled"
	StatusRunning   = "running"
	StatusRetrying  = "retrying"
	StatusWaiting   = "waiting"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCanceled  = "canceled"
)

// CostUSD is what a job's steps have spent so far.
func (j Job) CostUSD() float64 {
	var sum float64
	for _, st := range j.Steps {
		sum += st.CostUSD
	}
	return sum
}

// Terminal reports whether a job in status s is finished for good.
func Terminal(s string) bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Step statuses.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepCanceled  = "canceled"
	StepSkipped   = "skipped" // its `if` was false, or a need was skipped and it has no `if`
	StepWaiting   = "waiting" // a core.wait or core.wait_for_signal step that parked the job
)

// Priorities, stored as integers so the queue index orders them.
const (
	PriorityLow    = 0
	PriorityNormal = 1
	PriorityHigh   = 2
)

// Callback delivery states.
const (
	CallbackNone      = ""
	CallbackPending   = "pending"
	CallbackDelivered = "delivered"
	CallbackFailed    = "failed"
)

// Step is one step of a workflow, as the workflow language defines it.
type Step = workflow.Step

// Retry is a step's own retry policy.
type Retry = workflow.Retry

// Iteration is the progress of one item of a for_each step.
type Iteration struct {
	Index      int        `json:"index"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	Error      *StepError `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// StepError is why a step failed.
type StepError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// StepState is a step of a job with its progress; a job's steps column holds them.
type StepState struct {
	Step
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      *StepError      `json:"error,omitempty"`
	CostUSD    float64         `json:"cost_usd,omitempty"` // spent by all attempts of the step (AI calls)
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Iterations []Iteration     `json:"iterations,omitempty"` // a for_each step's items
	// WaitUntil is when a core.wait step's wait ends, or a core.wait_for_signal
	// step's timeout: fixed the first time the step runs, so re-entering the job
	// after a restart keeps it.
	WaitUntil *time.Time `json:"wait_until,omitempty"`
	// ResolvedInput is, in a dry run, the input the step would have received (a
	// for_each step: the array of its items' inputs).
	ResolvedInput json.RawMessage `json:"resolved_input,omitempty"`
	// Reused marks a step of a replay that was not run: its outcome is the original's.
	Reused bool `json:"reused,omitempty"`
}

// CallbackAttempt records one delivery of a completion webhook.
type CallbackAttempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Job is a job's whole record.
type Job struct {
	ID              string
	OwnerID         string // "" for jobs of bootstrap admin keys
	Workflow        string
	Status          string
	Priority        int
	RunAt           time.Time
	Attempts        int
	MaxAttempts     int
	TimeoutS        int
	Payload         json.RawMessage
	Steps           []StepState
	Result          json.RawMessage // nil until the job succeeded
	ErrorCode       string
	ErrorMessage    string
	Guardrails      json.RawMessage
	CallbackURL     string
	Callbacks       []CallbackAttempt
	CallbackState   string
	LeaseToken      string
	LeaseExpiresAt  *time.Time
	CancelRequested bool
	IdemScope       string // the API key the idempotency key belongs to
	IdemKey         string
	IdemHash        string // SHA-256 of the request body, hex
	CreatedAt       time.Time
	UpdatedAt       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
	// Rescues counts the times the job was returned to the queue because the worker
	// running it stopped; at MaxRescues it fails "crashed".
	Rescues int
	// StoredBytes is the size of the job's JSON as stored (payload, guardrails, steps
	// and result), kept by the store; list pages are bounded by it.
	StoredBytes int64
	// DryRun marks a rehearsed job (Intake.DryRun): stored finished, its outputs
	// examples; it never enters the queue and is never replayed.
	DryRun bool
	// ReplayOf is the job this one replays ("" for none).
	ReplayOf string
}

// MaxRescues is how many times a job may lose its worker while running (an expired
// lease, or a process that died) before it fails with code CodeCrashed, whatever its
// max_attempts: a job that makes its worker die — say, out of memory — would otherwise
// take down every worker that claims it, one restart after another. Three tells a job
// that crashes workers from one caught in a deploy or two. A worker stopping with
// jobs still running past its drain time counts as a rescue too.
const MaxRescues = 3

// CodeCrashed is the error code of a job failed after MaxRescues rescues.
const CodeCrashed = "crashed"

// CodeLeaseExpired is the error code of a job whose worker stopped on its last attempt.
const CodeLeaseExpired = "lease_expired"

// MaxListPageBytes bounds the stored size (Job.StoredBytes) of one page of ListJobs, so
// that listing large jobs holds a few MiB, not hundreds: a page ends before the job that
// would take it past this, and always holds at least one job (at most MaxJobOutputBytes
// plus what intake accepted).
const MaxListPageBytes = 4 << 20

// ListFilter selects a page of jobs, newest first.
type ListFilter struct {
	AllOwners     bool
	OwnerID       string
	Status        string
	Workflow      string
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	// The page starts strictly after (older than) this position.
	CursorCreatedAt time.Time
	CursorID        string
	Limit           int
	// MaxBytes bounds the page's stored size (0: MaxListPageBytes); the first job
	// comes whatever its size.
	MaxBytes int64
}

// Finish ends one attempt of a running job: a terminal status, or StatusRetrying
// at RunAt. It applies only while the worker still holds the lease (LeaseToken).
type Finish struct {
	ID           string
	LeaseToken   string
	Status       string
	Steps        []StepState
	Result       json.RawMessage
	ErrorCode    string
	ErrorMessage string
	RunAt        time.Time
	FinishedAt   *time.Time // set for terminal statuses
	// GiveBackAttempt undoes the attempt the claim counted (as parking does): the
	// attempt only ran the on_failure step of a job the rescuer failed (Worker.finalize).
	GiveBackAttempt bool
}

// Workflow is a named step list of one owner.
type Workflow struct {
	OwnerID     string
	Name        string
	Description string
	Steps       []Step
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// WebhookSecret signs an owner's completion webhooks. The Service shows it with
// Secret in clear; the Store keeps it sealed (Secret "", Sealed the ciphertext of a
// SecretSealer), except in rows written before migration 0012 (Secret in clear,
// Sealed nil) until SealWebhookSecrets seals them.
type WebhookSecret struct {
	OwnerID   string
	Secret    string
	Sealed    []byte
	CreatedAt time.Time
}

// QueueStats describes the queue for /status.
type QueueStats struct {
	ByStatus map[string]int64
	// OldestDueAt is the run_at of the job that has waited longest for a worker:
	// due (run_at passed) and not running. Nil when no job waits.
	OldestDueAt *time.Time
}

// Inserted is one result of Store.InsertJobs.
type Inserted struct {
	Job      Job
	Inserted bool // false: an earlier job holds the idempotency key
}

// Store keeps jobs, workflows and webhook secrets. Implementations live in
// store/sqlite and store/postgres and pass store/storetest.
type Store interface {
	// InsertJob stores a new job. When the job carries an idempotency key already
	// used in its scope, nothing is inserted and the existing job is returned with
	// inserted=false. Concurrent inserts with one key store exactly one job.
	InsertJob(ctx context.Context, j Job) (job Job, inserted bool, err error)
	// InsertJobs stores new jobs in one transaction, each as InsertJob would: the
	// result for js[i] is out[i]. An idempotency key used by an earlier job (of the
	// store, or of js) yields that job with Inserted=false. A failed transaction
	// stores none of js.
	InsertJobs(ctx context.Context, js []Job) (out []Inserted, err error)
	// GetJob returns a job, or a levqor.ENotFound error.
	GetJob(ctx context.Context, id string) (Job, error)
	// ListJobs returns up to f.Limit jobs, ordered by (created_at, id) descending,
	// ending before the job that would take their StoredBytes past f.MaxBytes (the
	// first job comes whatever its size). more reports that further jobs match f.
	ListJobs(ctx context.Context, f ListFilter) (page []Job, more bool, err error)

	// ClaimJobs moves up to limit due jobs to running under a lease held by token,
	// counting an attempt for each: highest priority first, then oldest run_at.
	ClaimJobs(ctx context.Context, token string, now, leaseUntil time.Time, limit int) ([]Job, error)
	// ExtendLeases extends every lease token holds and returns the ids of those
	// jobs whose cancellation was requested.
	ExtendLeases(ctx context.Context, token string, until time.Time) (cancel []string, err error)
	// SaveSteps records step progress while token holds the job's lease; false when it does not.
	SaveSteps(ctx context.Context, id, token string, steps []StepState, now time.Time) (bool, error)
	// FinishJobs applies attempts' ends in one transaction; those whose lease is
	// no longer held are skipped. It returns how many were applied.
	FinishJobs(ctx context.Context, now time.Time, fs []Finish) (int, error)
	// RescueExpired returns running jobs whose lease expires before cutoff to the
	// queue, due at now, counting a rescue, and returns how many it touched. A job
	// rescued MaxRescues times fails CodeCrashed; one with no attempt left fails
	// CodeLeaseExpired — unless its on_failure step (the last step) is still pending
	// and it has been rescued fewer than MaxRescues times: then it is due at now as
	// retrying, for the worker that claims it to run that step once and fail it
	// (Worker.finalize). cutoff is normally now; a far-future cutoff rescues every
	// running job.
	RescueExpired(ctx context.Context, cutoff, now time.Time) (int, error)
	// CancelQueued cancels a job that is not running yet; false when it was not in such a status.
	CancelQueued(ctx context.Context, id string, now time.Time) (Job, bool, error)
	// RequestCancel flags a running job for cancellation; false when it was not running.
	RequestCancel(ctx context.Context, id string, now time.Time) (Job, bool, error)
	// DeliverSignal stores a job's signal (data: JSON) once: false when the job holds
	// one of that name already. A job waiting then is made due at now.
	DeliverSignal(ctx context.Context, id, name string, data json.RawMessage, now time.Time) (bool, error)
	// Signal returns the data of a job's signal; false when none was delivered.
	Signal(ctx context.Context, id, name string) (json.RawMessage, bool, error)
	// WakeJob makes a waiting job due at now; false when it was not waiting (or due already).
	WakeJob(ctx context.Context, id string, now time.Time) (bool, error)
	// ReplayCandidates returns the ids of up to f.Limit jobs a bulk replay may take,
	// oldest first: those of f (its owner, Status, Workflow and creation times; no
	// cursor) that are not dry runs and that no job replays yet.
	ReplayCandidates(ctx context.Context, f ListFilter) ([]string, error)
	// QueueStats counts jobs per status and finds the oldest queued one.
	QueueStats(ctx context.Context) (QueueStats, error)

	// ClaimCallbacks takes up to limit jobs whose webhook is due, moving their next
	// attempt to leaseUntil so no other dispatcher takes them meanwhile.
	ClaimCallbacks(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Job, error)
	// RecordCallback stores the delivery attempts and the next state of a job's webhook.
	RecordCallback(ctx context.Context, id string, attempts []CallbackAttempt, state string, next *time.Time, now time.Time) error

	// PutWorkflow creates or replaces a workflow.
	PutWorkflow(ctx context.Context, w Workflow) (Workflow, error)
	// GetWorkflow returns a workflow, or a levqor.ENotFound error.
	GetWorkflow(ctx context.Context, ownerID, name string) (Workflow, error)
	// ListWorkflows returns an owner's workflows by name.
	ListWorkflows(ctx context.Context, ownerID string) ([]Workflow, error)
	// DeleteWorkflow deletes a workflow, or returns a levqor.ENotFound error.
	DeleteWorkflow(ctx context.Context, ownerID, name string) error

	// WebhookSecret returns the owner's signing secret, creating it with fresh when absent.
	WebhookSecret(ctx context.Context, ownerID string, fresh WebhookSecret) (WebhookSecret, error)
	// PutWebhookSecret replaces the owner's signing secret.
	PutWebhookSecret(ctx context.Context, s WebhookSecret) (WebhookSecret, error)
	// ClearWebhookSecrets returns up to limit rows that still hold a clear Secret
	// (written before secrets were sealed), by owner.
	ClearWebhookSecrets(ctx context.Context, limit int) ([]WebhookSecret, error)
	// SealWebhookSecret replaces the owner's clear secret by sealed (Secret becomes
	// ""), only while the row still holds clear; it reports whether it did.
	SealWebhookSecret(ctx context.Context, ownerID, clear string, sealed []byte) (bool, error)
}
