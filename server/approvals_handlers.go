package server

import (
	"context"
	"net/http"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/jobs"
)

// approvalView is the body of the approval pages: the request with its form, or a
// heading and a message (the result, or why the link did not work).
type approvalView struct {
	Heading, Message    string
	Subject, Text       string // the request: its subject and the text to review
	To, Workflow, JobID string
	Expires             string
	Action, FormToken   string // the form's URL and token; "" for no form
}

func newApprovalPages(s *site) (*formPages, error) {
	return newFormPages(s, "approval.html", func(status int, message string) (string, any) {
		heading := "This link did not work"
		switch status {
		case http.StatusNotFound:
			heading = "This link is not valid"
		case http.StatusConflict:
			heading = "Nothing left to decide"
		case http.StatusGone:
			heading = "This link has expired"
		}
		return heading, approvalView{Heading: heading, Message: message}
	})
}

// approvalsOff answers the approval routes of a server built without the job engine.
func approvalsOff() error {
	return levqor.Errorf(levqor.EUnavailable, "Approvals are not available on this server.")
}

// GetApproval implements api.StrictServerInterface: the page of an approval request,
// with its buttons. Looking decides nothing, so mail and chat scanners that fetch
// the link do not decide on the reader's behalf.
func (s *handlers) GetApproval(ctx context.Context, req api.GetApprovalRequestObject) (api.GetApprovalResponseObject, error) {
	if s.jobs == nil {
		return nil, approvalsOff()
	}
	v, err := s.jobs.Approval(ctx, req.Token)
	if err != nil {
		return nil, err
	}
	const heading = "Approve or reject"
	return s.approvalPages.page(http.StatusOK, heading, "A workflow waits for your decision.", approvalView{
		Heading: heading, Message: "A workflow waits for your decision before it goes on. Read the request, then press a button.",
		Subject: v.Subject, Text: v.Message, To: v.To, Workflow: v.Workflow, JobID: v.JobID,
		Expires: v.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"), Action: "/approvals/" + req.Token, FormToken: v.FormToken,
	})
}

// DecideApproval implements api.StrictServerInterface: the buttons' post.
func (s *handlers) DecideApproval(ctx context.Context, req api.DecideApprovalRequestObject) (api.DecideApprovalResponseObject, error) {
	if s.jobs == nil {
		return nil, approvalsOff()
	}
	d, err := s.jobs.DecideByLink(ctx, req.Token, jobs.LinkDecision{Decision: string(req.Body.Decision), FormToken: req.Body.FormToken,
		Name: deref(req.Body.Name), Comment: deref(req.Body.Comment)})
	if err != nil {
		return nil, err
	}
	v := approvalView{Heading: "Approved", Message: "Thank you: the workflow goes on. Recorded at " + d.DecidedAt.Format(time.RFC3339) + "."}
	if !d.Approved {
		v = approvalView{Heading: "Rejected", Message: "Thank you: the workflow does not go on with this request. Recorded at " + d.DecidedAt.Format(time.RFC3339) + "."}
	}
	return s.approvalPages.page(http.StatusOK, v.Heading, v.Message, v)
}

// DecideJobApproval implements api.StrictServerInterface: the owner decides with
// an API key, as a signal is delivered.
func (s *handlers) DecideJobApproval(ctx context.Context, req api.DecideJobApprovalRequestObject) (api.DecideJobApprovalResponseObject, error) {
	j, err := s.jobs.DecideApproval(ctx, principalFrom(ctx), req.Id, req.StepId, string(req.Body.Decision), deref(req.Body.By), deref(req.Body.Comment))
	if err != nil {
		return nil, err
	}
	return api.DecideJobApproval200JSONResponse(toAPIJob(j)), nil
}
