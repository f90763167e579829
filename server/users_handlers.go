package server

import (
	"context"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/users"
)

func toAPIUser(u users.User) api.User {
	meta := u.Meta
	if meta == nil {
		meta = map[string]any{}
	}
	return api.User{
		Id: u.ID, Email: openapi_types.Email(u.Email), Name: u.Name, Locale: u.Locale, Currency: u.Currency, Plan: u.Plan,
		Meta: meta, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

func toUserFields(name, locale *string, currency *api.Currency, plan *string, meta map[string]any) users.Fields {
	f := users.Fields{Name: name, Locale: locale, Plan: plan, Meta: meta}
	if currency != nil {
		c := string(*currency)
		f.Currency = &c
	}
	return f
}

// UpsertUser implements api.StrictServerInterface.
func (s *handlers) UpsertUser(ctx context.Context, req api.UpsertUserRequestObject) (api.UpsertUserResponseObject, error) {
	b := req.Body
	var meta map[string]any
	if b.Meta != nil {
		meta = *b.Meta
	}
	u, created, err := s.users.Upsert(ctx, principalFrom(ctx), b.Email, toUserFields(b.Name, b.Locale, b.Currency, b.Plan, meta))
	if err != nil {
		return nil, err
	}
	if created {
		if s.userCreated != nil {
			s.userCreated(ctx, u)
		}
		return api.UpsertUser201JSONResponse(toAPIUser(u)), nil
	}
	return api.UpsertUser200JSONResponse(toAPIUser(u)), nil
}

// FindUser implements api.StrictServerInterface.
func (s *handlers) FindUser(ctx context.Context, req api.FindUserRequestObject) (api.FindUserResponseObject, error) {
	u, err := s.users.FindByEmail(ctx, principalFrom(ctx), req.Params.Email)
	if err != nil {
		return nil, err
	}
	return api.FindUser200JSONResponse(toAPIUser(u)), nil
}

// GetUser implements api.StrictServerInterface.
func (s *handlers) GetUser(ctx context.Context, req api.GetUserRequestObject) (api.GetUserResponseObject, error) {
	u, err := s.users.Get(ctx, principalFrom(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetUser200JSONResponse(toAPIUser(u)), nil
}

// PatchUser implements api.StrictServerInterface.
func (s *handlers) PatchUser(ctx context.Context, req api.PatchUserRequestObject) (api.PatchUserResponseObject, error) {
	b := req.ApplicationMergePatchPlusJSONBody
	if b == nil {
		b = req.JSONBody
	}
	var meta map[string]any
	if b.Meta != nil {
		meta = *b.Meta
	}
	u, err := s.users.Patch(ctx, principalFrom(ctx), req.Id, toUserFields(b.Name, b.Locale, b.Currency, b.Plan, meta))
	if err != nil {
		return nil, err
	}
	return api.PatchUser200JSONResponse(toAPIUser(u)), nil
}
