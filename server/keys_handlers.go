package server

import (
	"context"
	"time"

	"github.com/levqor/levqor/gen/api"
	"github.com/levqor/levqor/keys"
)

func toAPIKey(k keys.Key) api.Key {
	scopes := make([]api.Scope, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = api.Scope(s)
	}
	return api.Key{
		Id: k.ID, OwnerId: k.OwnerID, Name: k.Name, Prefix: api.KeyPrefix(k.Prefix), Last4: k.Last4, Scopes: scopes,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt,
	}
}

func toAPIKeyWithSecret(k keys.Key, secret string) api.KeyWithSecret {
	a := toAPIKey(k)
	return api.KeyWithSecret{
		Id: a.Id, OwnerId: a.OwnerId, Name: a.Name, Prefix: api.KeyWithSecretPrefix(a.Prefix), Last4: a.Last4, Scopes: a.Scopes,
		CreatedAt: a.CreatedAt, LastUsedAt: a.LastUsedAt, ExpiresAt: a.ExpiresAt, RevokedAt: a.RevokedAt, Key: secret,
	}
}

// CreateKey implements api.StrictServerInterface.
func (s *handlers) CreateKey(ctx context.Context, req api.CreateKeyRequestObject) (api.CreateKeyResponseObject, error) {
	b := req.Body
	in := keys.CreateInput{OwnerID: b.OwnerId, ExpiresAt: b.ExpiresAt, Env: keys.EnvLive}
	if b.Name != nil {
		in.Name = *b.Name
	}
	if b.Environment != nil {
		in.Env = string(*b.Environment)
	}
	for _, sc := range b.Scopes {
		in.Scopes = append(in.Scopes, string(sc))
	}
	k, secret, err := s.keys.Create(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.CreateKey201JSONResponse(toAPIKeyWithSecret(k, secret)), nil
}

// ListKeys implements api.StrictServerInterface.
func (s *handlers) ListKeys(ctx context.Context, req api.ListKeysRequestObject) (api.ListKeysResponseObject, error) {
	owner, limit := "", 100
	if req.Params.OwnerId != nil {
		owner = *req.Params.OwnerId
	}
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	list, err := s.keys.List(ctx, owner, limit)
	if err != nil {
		return nil, err
	}
	out := api.ListKeys200JSONResponse{Data: make([]api.Key, len(list))}
	for i, k := range list {
		out.Data[i] = toAPIKey(k)
	}
	return out, nil
}

// RevokeKey implements api.StrictServerInterface.
func (s *handlers) RevokeKey(ctx context.Context, req api.RevokeKeyRequestObject) (api.RevokeKeyResponseObject, error) {
	if err := s.keys.Revoke(ctx, req.Id); err != nil {
		return nil, err
	}
	return api.RevokeKey204Response{}, nil
}

// RollKey implements api.StrictServerInterface.
func (s *handlers) RollKey(ctx context.Context, req api.RollKeyRequestObject) (api.RollKeyResponseObject, error) {
	grace := 24 * time.Hour
	if req.Body != nil && req.Body.GracePeriodS != nil {
		grace = time.Duration(*req.Body.GracePeriodS) * time.Second
	}
	k, secret, err := s.keys.Roll(ctx, req.Id, grace)
	if err != nil {
		return nil, err
	}
	return api.RollKey201JSONResponse(toAPIKeyWithSecret(k, secret)), nil
}
