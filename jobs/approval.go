package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/notifier"
	"github.com/levqor/levqor/resendapi"
	"github.com/levqor/levqor/stepinput"
)

// core.approval (docs/adr/0020-approvals.md): the step sends a request with a
// signed, expiring link and parks the job like core.wait_for_signal; the decision
// is stored once, as the job's signal approvalSignal(step), which wakes the job and
// becomes the step's output.

// Limits and defaults of core.approval.
const (
	// DefaultApprovalTimeout is how long an approval link works (and the step waits)
	// unless the step's `timeout` says otherwise (at most MaxWait).
	DefaultApprovalTimeout = 72 * time.Hour
	// MaxApprovalToken bounds an approval link's token (the spec's ApprovalToken).
	MaxApprovalToken = 512
	// MaxApprovalComment bounds a decision's comment; MaxApprovalName its name.
	MaxApprovalComment = 2000
	MaxApprovalName    = 100
)

// ApprovalKeyPurpose is what main derives the key that signs approval links for
// (credentials.Service.DeriveKey), so that every instance sharing the credentials
// key verifies the links any of them sent.
const ApprovalKeyPurpose = "levqor/approval-token/v1"

// Step error codes of core.approval.
const (
	CodeApprovalRejected      = "approval_rejected"      // the person rejected
	CodeApprovalTimeout       = "approval_timeout"       // nobody decided before the timeout
	CodeApprovalUndeliverable = "approval_undeliverable" // this server cannot send the request (no email)
)

// Decisions, and how they were made.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
	ViaEmail        = "email"
	ViaSlack        = "slack"
	ViaAPI          = "api"
)

// Decision is how an approval was decided: stored once, and the step's output.
type Decision struct {
	Decision string `json:"decision"` // approve or reject
	Approved bool   `json:"approved"`
	// By is who the link was sent to (an address, or "slack:<channel>"), or for a
	// decision through the API what the caller named (optional).
	By        string    `json:"by,omitempty"`
	Name      string    `json:"name,omitempty"` // as the person typed it on the page (optional)
	Comment   string    `json:"comment,omitempty"`
	Via       string    `json:"via"`              // email, slack or api
	KeyID     string    `json:"key_id,omitempty"` // the API key that decided (via api)
	DecidedAt time.Time `json:"decided_at"`
}

// ApprovalMailer sends Levqor's own email (the notifier).
type ApprovalMailer interface {
	Send(ctx context.Context, msg notifier.Message) (string, error)
}

// ApprovalOptions configure core.approval steps.
type ApprovalOptions struct {
	// Key signs the links (main: credentials DeriveKey(ApprovalKeyPurpose)); nil: a
	// random key of this process, whose links no other process accepts.
	Key []byte
	// PublicURL roots the link in Slack messages (email templates root it themselves).
	PublicURL string
	// Mail sends requests addressed `to` an email address; nil fails such steps with
	// CodeApprovalUndeliverable. Requests to a Slack `channel` go through the slack
	// connector, as the owner's connection.
	Mail ApprovalMailer
}

// approvals is the approval machinery shared by the worker (sends) and the service (decides).
type approvals struct {
	key       []byte
	publicURL string
	mail      ApprovalMailer
}

func newApprovals(o ApprovalOptions) *approvals {
	key := o.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &approvals{key: key, publicURL: strings.TrimSuffix(o.PublicURL, "/"), mail: o.Mail}
}

// approvalSignal is the name a step's decision is stored under among the job's
// signals: a ':' no signal sent through the API can have, so the two never meet.
func approvalSignal(stepID string) string { return "approval:" + stepID }

// approvalToken is what a link's token says: one step of one job, until Expires.
type approvalToken struct {
	JobID, StepID string
	Expires       time.Time // to the second
}

const (
	tokenVersion = 1
	tokenMACLen  = 32
	// tokenContext and formContext keep the token's MAC and the form token's apart.
	tokenContext = "levqor approval token\x00"
	formContext  = "levqor approval form\x00"
)

var (
	// errBadToken is a token that is malformed or forged: the link is unknown.
	errBadToken = levqor.Errorf(levqor.ENotFound, "This approval link is not valid.")
	// errTokenExpired is a genuine token past its expiry.
	errTokenExpired = levqor.Errorf(levqor.EGone, "This approval link has expired: the request can no longer be decided through it.")
	// idPattern is what the job and step ids a token may carry look like.
	idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// sign returns t's token: base64url (no padding) of version, expiry (Unix seconds),
// the ids (length-prefixed), then HMAC-SHA-256 of all that under the key.
func (a *approvals) sign(t approvalToken) string {
	b := []byte{tokenVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.Unix()))
	for _, s := range []string{t.JobID, t.StepID} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return base64.RawURLEncoding.EncodeToString(append(b, a.mac(tokenContext, b)...))
}

func (a *approvals) mac(context string, msg []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(context))
	m.Write(msg)
	return m.Sum(nil)
}

// parse returns what a token says, or errBadToken when it is malformed or its MAC
// does not verify. It does not check the expiry.
func (a *approvals) parse(token string) (approvalToken, error) {
	if len(token) > MaxApprovalToken {
		return approvalToken{}, errBadToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 1+8+tokenMACLen {
		return approvalToken{}, errBadToken
	}
	body, sum := raw[:len(raw)-tokenMACLen], raw[len(raw)-tokenMACLen:]
	if !hmac.Equal(sum, a.mac(tokenContext, body)) || body[0] != tokenVersion {
		return approvalToken{}, errBadToken
	}
	t := approvalToken{Expires: time.Unix(int64(binary.BigEndian.Uint64(body[1:9])), 0).UTC()}
	rest := body[9:]
	for _, dst := range []*string{&t.JobID, &t.StepID} {
		if len(rest) == 0 || len(rest) < 1+int(rest[0]) {
			return approvalToken{}, errBadToken
		}
		*dst, rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
		if !idPattern.MatchString(*dst) {
			return approvalToken{}, errBadToken
		}
	}
	if len(rest) != 0 {
		return approvalToken{}, errBadToken
	}
	return t, nil
}

// formToken is the value the approval page's form carries besides the token in its
// URL: a second MAC of the token, which only the page served for it holds.
func (a *approvals) formToken(token string) string {
	return base64.RawURLEncoding.EncodeToString(a.mac(formContext, []byte(token))[:18])
}

// approvalInput is a core.approval step's input, resolved.
type approvalInput struct {
	To         string          `json:"to"`
	Channel    string          `json:"channel"`
	Connection string          `json:"connection"`
	Subject    string          `json:"subject"`
	Message    string          `json:"message"`
	Timeout    json.RawMessage `json:"timeout"`
}

// recipient is who the request goes to, as a decision records it.
func (in approvalInput) recipient() (by, via string) {
	if in.To != "" {
		return in.To, ViaEmail
	}
	return "slack:" + in.Channel, ViaSlack
}

// approvalTimeout is a step's timeout: `timeout`, or DefaultApprovalTimeout.
func approvalTimeout(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 {
		return DefaultApprovalTimeout, nil
	}
	d, err := parseWait(raw)
	if err != nil {
		return 0, fmt.Errorf("timeout: %w", err)
	}
	if d < time.Second {
		return 0, errors.New("timeout: must be at least 1s, so that someone can follow the link")
	}
	return d, nil
}

// runApproval runs a core.approval step with its resolved input: a decision taken
// already is its end (the output, or a rejection); else the first run sends the
// request (fixing st.WaitUntil, the link's expiry) and the job parks until the
// decision or the timeout.
func (w *Worker) runApproval(ctx context.Context, j Job, st *StepState, input json.RawMessage) (json.RawMessage, error) {
	now := w.now().UTC()
	data, decided, err := w.store.Signal(ctx, j.ID, approvalSignal(st.ID))
	switch {
	case err != nil:
		return nil, &connectors.StepError{Code: "internal", Message: "Could not read the step's decision.", Retryable: true, Err: err}
	case decided:
		return decisionOutcome(data)
	}
	if st.WaitUntil == nil {
		if err := w.reg.Validate(core.Name, "approval", input); err != nil {
			return nil, err
		}
		var in approvalInput
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "the input is not a JSON object", Err: err}
		}
		d, err := approvalTimeout(in.Timeout)
		if err != nil {
			return nil, &connectors.StepError{Code: connectors.CodeInvalidInput, Message: err.Error()}
		}
		until := now.Add(d).Truncate(time.Second) // the link's expiry, to the second
		token := w.approvals.sign(approvalToken{JobID: j.ID, StepID: st.ID, Expires: until})
		sendCtx, cancel := context.WithTimeout(connectors.WithStep(ctx, connectors.Step{JobID: j.ID, StepID: st.ID, OwnerID: j.OwnerID, Attempt: st.Attempts}),
			time.Duration(j.TimeoutS)*time.Second)
		err = w.sendApproval(sendCtx, j, st.ID, in, token, until)
		cancel()
		if err != nil {
			return nil, err
		}
		st.WaitUntil = &until
	}
	if !now.Before(*st.WaitUntil) {
		return nil, &connectors.StepError{Code: CodeApprovalTimeout, Message: fmt.Sprintf("Nobody approved or rejected before %s.", st.WaitUntil.Format(time.RFC3339))}
	}
	return nil, &waitError{until: *st.WaitUntil, signals: []string{approvalSignal(st.ID)}}
}

// rejection is a rejected approval: the step fails, and its output still records
// who rejected and why.
type rejection struct {
	*connectors.StepError
	decision json.RawMessage
}

func (r *rejection) Unwrap() error { return r.StepError }

// failedOutput is the output a failed step keeps: a rejection's decision, else none.
func failedOutput(err error) json.RawMessage {
	var r *rejection
	if errors.As(err, &r) {
		return r.decision
	}
	return nil
}

// decisionOutcome is the end of a decided step: the decision as its output when
// approved, a rejection otherwise.
func decisionOutcome(data json.RawMessage) (json.RawMessage, error) {
	var d Decision
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, &connectors.StepError{Code: "internal", Message: "The step's decision cannot be read.", Err: err}
	}
	if d.Approved {
		return data, nil
	}
	who := d.By
	if d.Name != "" {
		who = strings.TrimSpace(d.Name + " (" + d.By + ")")
	}
	msg := "Rejected"
	if who != "" {
		msg += " by " + who
	}
	if d.Comment != "" {
		msg += ": " + d.Comment
	}
	return nil, &rejection{StepError: &connectors.StepError{Code: CodeApprovalRejected, Message: msg + "."}, decision: data}
}

// sendApproval sends the request of step stepID: by email through the notifier, or
// to a Slack channel through the slack connector as the job's owner.
func (w *Worker) sendApproval(ctx context.Context, j Job, stepID string, in approvalInput, token string, until time.Time) error {
	expires := until.UTC().Format("2006-01-02 15:04 MST")
	if in.To == "" {
		text := fmt.Sprintf("*Approval needed: %s*\n%s\n\nReview and decide (the link works once, until %s): %s/approvals/%s",
			slackEscape(in.Subject), slackEscape(in.Message), expires, w.approvals.publicURL, token)
		body := map[string]string{"channel": in.Channel, "text": text}
		if in.Connection != "" {
			body["connection"] = in.Connection
		}
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		_, err = w.reg.Run(ctx, "slack", "post_message", b)
		return err
	}
	if w.approvals.mail == nil {
		return &connectors.StepError{Code: CodeApprovalUndeliverable,
			Message: "This server sends no email, so it cannot send the request: send it to a Slack channel, or decide with POST /api/v1/jobs/{id}/approvals/{step_id}."}
	}
	data := map[string]any{"token": token, "subject": in.Subject, "job_id": j.ID, "expires": expires}
	if j.Workflow != "" {
		data["workflow"] = j.Workflow
	}
	if strings.TrimSpace(in.Message) != "" {
		data["message"] = in.Message
	}
	// The key holds the expiry: a send repeated after a crash (a new expiry, a new
	// link) is a new email, where the same key with another body would be refused.
	_, err := w.approvals.mail.Send(ctx, notifier.Message{Template: notifier.ApprovalRequest, To: in.To, Data: data,
		IdempotencyKey: fmt.Sprintf("approval/%s/%s/%d", j.ID, stepID, until.Unix())})
	var re *resendapi.Error
	var de *notifier.DataError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, notifier.ErrDisabled):
		return &connectors.StepError{Code: CodeApprovalUndeliverable,
			Message: "This server sends no email (no Resend API key), so it cannot send the request: send it to a Slack channel, or decide with POST /api/v1/jobs/{id}/approvals/{step_id}."}
	case errors.Is(err, notifier.ErrBadRecipient):
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: "to is not one valid email address."}
	case errors.As(err, &de):
		return &connectors.StepError{Code: connectors.CodeInvalidInput, Message: strings.TrimPrefix(de.Error(), "template "+notifier.ApprovalRequest+": data.")}
	case errors.As(err, &re):
		return &connectors.StepError{Code: connectors.CodeUpstreamError, Message: "The email service refused the request.", Retryable: re.Retryable(), Err: err}
	}
	return &connectors.StepError{Code: connectors.CodeUpstreamError, Message: "The email could not be sent.", Retryable: true, Err: err}
}

// slackEscape escapes the three characters Slack's mrkdwn gives a meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// checkApproval checks what the input schema cannot of a core.approval step at save:
// its timeout, unless a reference fills it in.
func checkApproval(input json.RawMessage) error {
	var in approvalInput
	if json.Unmarshal(input, &in) != nil || len(in.Timeout) == 0 || strings.Contains(string(in.Timeout), "{{") {
		return nil // the input schema says why, or it is checked when the step runs
	}
	_, err := approvalTimeout(in.Timeout)
	return err
}

// ApprovalView is an approval request as its page shows it.
type ApprovalView struct {
	JobID, StepID, Workflow string
	Subject, Message        string
	To                      string // who it was sent to: an address, or "slack:<channel>"
	ExpiresAt               time.Time
	FormToken               string // what the page's form must carry back
}

// Approval returns the request a link's token names, for its page. Errors: a
// malformed or forged token, or one whose job or step is gone, levqor.ENotFound;
// an expired one levqor.EGone; one decided already, or whose step or job has
// ended, levqor.EConflict. Looking decides nothing.
func (s *Service) Approval(ctx context.Context, token string) (ApprovalView, error) {
	t, j, i, err := s.approvalOf(ctx, token)
	if err != nil {
		return ApprovalView{}, err
	}
	if err := s.undecided(ctx, j, i); err != nil {
		return ApprovalView{}, err
	}
	in, err := resolvedApproval(j, i)
	if err != nil {
		return ApprovalView{}, err
	}
	to, _ := in.recipient()
	return ApprovalView{JobID: j.ID, StepID: t.StepID, Workflow: j.Workflow, Subject: in.Subject, Message: in.Message, To: to,
		ExpiresAt: t.Expires, FormToken: s.approvals.formToken(token)}, nil
}

// LinkDecision is a decision posted from an approval page.
type LinkDecision struct {
	Decision  string // approve or reject
	FormToken string // the page's form token
	Name      string // optional
	Comment   string // optional
}

// DecideByLink applies a decision posted from the page of token: once (a second
// one is levqor.EConflict), waking the job. A form token other than the page's is
// levqor.EForbidden; other errors as Approval.
func (s *Service) DecideByLink(ctx context.Context, token string, d LinkDecision) (Decision, error) {
	t, err := s.approvals.parse(token)
	if err != nil {
		return Decision{}, err
	}
	if !s.now().Before(t.Expires) {
		return Decision{}, errTokenExpired
	}
	if subtle.ConstantTimeCompare([]byte(d.FormToken), []byte(s.approvals.formToken(token))) != 1 {
		return Decision{}, levqor.Errorf(levqor.EForbidden, "This decision did not come from the approval page: open the link and use its buttons.")
	}
	_, j, i, err := s.approvalOf(ctx, token)
	if err != nil {
		return Decision{}, err
	}
	in, err := resolvedApproval(j, i)
	if err != nil {
		return Decision{}, err
	}
	dec := Decision{Decision: d.Decision, Name: strings.TrimSpace(d.Name), Comment: strings.TrimSpace(d.Comment)}
	dec.By, dec.Via = in.recipient()
	return dec, s.decide(ctx, j, i, &dec)
}

// DecideApproval applies a decision on step stepID, a core.approval step of a job of
// the principal's owner: once, as DecideByLink, recording the deciding key. A job
// not the owner's, or without that step, is levqor.ENotFound; a step decided
// already or ended, or a job that has ended, levqor.EConflict. A step that has not
// sent its request yet keeps the decision and sends none.
func (s *Service) DecideApproval(ctx context.Context, p keys.Principal, id, stepID, decision, by, comment string) (Job, error) {
	j, err := s.visible(ctx, p, id)
	if err != nil {
		return Job{}, err
	}
	i := approvalStep(j, stepID)
	if i < 0 {
		return Job{}, levqor.Errorf(levqor.ENotFound, "The job has no core.approval step %q.", stepID)
	}
	dec := Decision{Decision: decision, By: strings.TrimSpace(by), Comment: strings.TrimSpace(comment), Via: ViaAPI, KeyID: p.KeyID}
	if err := s.decide(ctx, j, i, &dec); err != nil {
		return Job{}, err
	}
	return s.store.GetJob(ctx, id)
}

// approvalOf checks token and returns it with its job and the index of its step.
func (s *Service) approvalOf(ctx context.Context, token string) (approvalToken, Job, int, error) {
	t, err := s.approvals.parse(token)
	if err != nil {
		return approvalToken{}, Job{}, -1, err
	}
	if !s.now().Before(t.Expires) {
		return approvalToken{}, Job{}, -1, errTokenExpired
	}
	j, err := s.store.GetJob(ctx, t.JobID)
	if levqor.ErrorCode(err) == levqor.ENotFound {
		return approvalToken{}, Job{}, -1, errBadToken // pruned since: as unknown as a forged link
	}
	if err != nil {
		return approvalToken{}, Job{}, -1, err
	}
	i := approvalStep(j, t.StepID)
	if i < 0 {
		return approvalToken{}, Job{}, -1, errBadToken
	}
	return t, j, i, nil
}

// approvalStep is the index of j's core.approval step stepID, or -1.
func approvalStep(j Job, stepID string) int {
	for i, st := range j.Steps {
		if st.ID == stepID && st.Connector == core.Name && st.Action == "approval" {
			return i
		}
	}
	return -1
}

// undecided returns levqor.EConflict when step i of j was decided, or it or the job ended.
func (s *Service) undecided(ctx context.Context, j Job, i int) error {
	data, decided, err := s.store.Signal(ctx, j.ID, approvalSignal(j.Steps[i].ID))
	if err != nil {
		return err
	}
	if decided {
		return errDecided(data)
	}
	switch st := j.Steps[i]; {
	case Terminal(j.Status):
		return levqor.Errorf(levqor.EConflict, "The job has ended (%s): nothing is left to decide.", j.Status)
	case st.Status == StepSucceeded || st.Status == StepFailed || st.Status == StepSkipped || st.Status == StepCanceled:
		return levqor.Errorf(levqor.EConflict, "The approval step has ended (%s): nothing is left to decide.", st.Status)
	}
	return nil
}

// errDecided is the conflict of a decision taken already, saying which.
func errDecided(data json.RawMessage) error {
	var d Decision
	if json.Unmarshal(data, &d) != nil || d.DecidedAt.IsZero() {
		return levqor.Errorf(levqor.EConflict, "This request was decided already.")
	}
	verb := "approved"
	if !d.Approved {
		verb = "rejected"
	}
	return levqor.Errorf(levqor.EConflict, "This request was %s already, at %s.", verb, d.DecidedAt.UTC().Format(time.RFC3339))
}

// decide stores d (completed: approved, its time) as step i's decision, once, and
// wakes the job.
func (s *Service) decide(ctx context.Context, j Job, i int, d *Decision) error {
	if d.Decision != DecisionApprove && d.Decision != DecisionReject {
		return invalid("/decision", "decision must be approve or reject.")
	}
	if utf8.RuneCountInString(d.Comment) > MaxApprovalComment {
		return invalid("/comment", "comment is at most %d characters.", MaxApprovalComment)
	}
	if utf8.RuneCountInString(d.Name) > MaxApprovalName {
		return invalid("/name", "name is at most %d characters.", MaxApprovalName)
	}
	if err := s.undecided(ctx, j, i); err != nil {
		return err
	}
	d.Approved, d.DecidedAt = d.Decision == DecisionApprove, s.now().UTC()
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ok, err := s.store.DeliverSignal(ctx, j.ID, approvalSignal(j.Steps[i].ID), data, d.DecidedAt)
	if err != nil {
		return err
	}
	if !ok {
		// Another decision won between the read and the insert.
		got, _, err := s.store.Signal(ctx, j.ID, approvalSignal(j.Steps[i].ID))
		if err != nil {
			return levqor.Errorf(levqor.EConflict, "This request was decided already.")
		}
		return errDecided(got)
	}
	s.wake()
	s.events.Publish(j.ID)
	return nil
}

// resolvedApproval is step i's input with its references filled in from the job's
// payload and the outputs of the steps that succeeded: what the request said (those
// steps never run again, so it is the same text).
func resolvedApproval(j Job, i int) (approvalInput, error) {
	outputs := map[string]json.RawMessage{}
	for _, st := range j.Steps {
		if st.Status == StepSucceeded {
			outputs[st.ID] = st.Output
		}
	}
	input := j.Steps[i].Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	resolved, err := stepinput.Resolve(input, j.Payload, outputs)
	var in approvalInput
	if err == nil {
		err = json.Unmarshal(resolved, &in)
	}
	if err != nil {
		return approvalInput{}, levqor.Errorf(levqor.EConflict, "The request's text cannot be shown: its references do not resolve.")
	}
	return in, nil
}
