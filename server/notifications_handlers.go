package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/notifier"
)

// notificationsOwner is the owner whose settings the caller reads and writes: its own.
// The bootstrap admin key has no owner, and so no user to email.
func notificationsOwner(ctx context.Context) (string, error) {
	p := principalFrom(ctx)
	if p.OwnerID == "" {
		return "", levqor.Errorf(levqor.EForbidden, "This key has no owner, so there is no user to email; use a key created for a user.")
	}
	return p.OwnerID, nil
}

// toAPINotifications is the API view of an owner's settings, with the address the
// emails go to (null when the owner has no user record).
func toAPINotifications(set notifier.Settings, email string) api.Notifications {
	out := api.Notifications{JobFailed: set.JobFailed}
	if email != "" {
		out.Email = &email
	}
	return out
}

// GetNotifications implements api.StrictServerInterface.
func (s *handlers) GetNotifications(ctx context.Context, _ api.GetNotificationsRequestObject) (api.GetNotificationsResponseObject, error) {
	owner, err := notificationsOwner(ctx)
	if err != nil {
		return nil, err
	}
	set, email, err := s.notifications.Get(ctx, owner)
	if err != nil {
		return nil, err
	}
	return api.GetNotifications200JSONResponse(toAPINotifications(set, email)), nil
}

// PutNotifications implements api.StrictServerInterface.
func (s *handlers) PutNotifications(ctx context.Context, req api.PutNotificationsRequestObject) (api.PutNotificationsResponseObject, error) {
	owner, err := notificationsOwner(ctx)
	if err != nil {
		return nil, err
	}
	set := notifier.Settings{JobFailed: req.Body.JobFailed}
	email, err := s.notifications.Set(ctx, owner, set)
	if err != nil {
		return nil, err
	}
	return api.PutNotifications200JSONResponse(toAPINotifications(set, email)), nil
}
