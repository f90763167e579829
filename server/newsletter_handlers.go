package server

import (
	"context"
	"net/http"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// newsletterOff answers the newsletter routes of a server built without the service.
func newsletterOff() error {
	return levqor.Errorf(levqor.EUnavailable, "The newsletter is not available on this server.")
}

// SubscribeNewsletter implements api.StrictServerInterface: 202 with one body,
// whatever the address's state, so that the answer reveals nothing about it.
func (s *handlers) SubscribeNewsletter(ctx context.Context, req api.SubscribeNewsletterRequestObject) (api.SubscribeNewsletterResponseObject, error) {
	if s.newsletter == nil {
		return nil, newsletterOff()
	}
	source := ""
	if req.Body.Source != nil {
		source = *req.Body.Source
	}
	if err := s.newsletter.Subscribe(ctx, string(req.Body.Email), source); err != nil {
		return nil, err
	}
	return api.SubscribeNewsletter202JSONResponse{Status: api.Accepted}, nil
}

// GetNewsletterConfirm implements api.StrictServerInterface: the page with the
// confirm button. Following the link changes nothing, so mail scanners that
// fetch it do not confirm on the reader's behalf.
func (s *handlers) GetNewsletterConfirm(ctx context.Context, req api.GetNewsletterConfirmRequestObject) (api.GetNewsletterConfirmResponseObject, error) {
	if s.newsletter == nil {
		return nil, newsletterOff()
	}
	if err := s.newsletter.Check(req.Params.Token); err != nil {
		return nil, err
	}
	return s.newsletterPages.newsletterPage(http.StatusOK, newsletterView{
		Heading: "Confirm your subscription",
		Message: "Press the button to receive the Levqor newsletter at the address this link was sent to.",
		Token:   req.Params.Token,
	})
}

// ConfirmNewsletter implements api.StrictServerInterface: the button's post.
func (s *handlers) ConfirmNewsletter(ctx context.Context, req api.ConfirmNewsletterRequestObject) (api.ConfirmNewsletterResponseObject, error) {
	if s.newsletter == nil {
		return nil, newsletterOff()
	}
	if err := s.newsletter.Confirm(ctx, req.Body.Token); err != nil {
		return nil, err
	}
	return s.newsletterPages.newsletterPage(http.StatusOK, newsletterView{
		Heading: "You are subscribed",
		Message: "Thank you: the Levqor newsletter will reach you at this address.",
	})
}
