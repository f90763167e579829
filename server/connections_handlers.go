package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/credentials"
	"github.com/levqor/levqor/gen/api"
)

// errNoCredentialsService answers the connections routes of a server built without
// a credentials.Service.
var errNoCredentialsService = levqor.Errorf(levqor.EUnavailable, "Connector credentials are not available on this server.")

func toAPIConnection(c credentials.Connection) api.Connection {
	out := api.Connection{Connector: c.Connector, Name: c.Name, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		Fields: make([]api.ConnectionField, len(c.Fields))}
	for i, f := range c.Fields {
		out.Fields[i] = api.ConnectionField{Name: f.Name, Last4: f.Last4}
	}
	return out
}

// credentialFields returns the credential fields the catalogue lists for
// connector, and whether its connections hold headers instead; none for an
// unknown connector or one that takes no credentials.
func (s *handlers) credentialFields(connector string) (fields []string, headers bool) {
	if s.jobs == nil {
		return nil, false
	}
	for _, e := range s.jobs.Catalogue() {
		if e.Connector == connector {
			return e.CredentialFields, e.CredentialHeaders
		}
	}
	return nil, false
}

// ListConnections implements api.StrictServerInterface.
func (s *handlers) ListConnections(ctx context.Context, _ api.ListConnectionsRequestObject) (api.ListConnectionsResponseObject, error) {
	if s.credentials == nil {
		return nil, errNoCredentialsService
	}
	list, err := s.credentials.List(ctx, principalFrom(ctx).OwnerID)
	if err != nil {
		return nil, err
	}
	out := api.ListConnections200JSONResponse{Data: make([]api.Connection, len(list))}
	for i, c := range list {
		out.Data[i] = toAPIConnection(c)
	}
	return out, nil
}

// PutConnection implements api.StrictServerInterface. The connector's accepted
// fields come from the connector catalogue.
func (s *handlers) PutConnection(ctx context.Context, req api.PutConnectionRequestObject) (api.PutConnectionResponseObject, error) {
	if s.credentials == nil {
		return nil, errNoCredentialsService
	}
	if req.Body == nil {
		return nil, levqor.Errorf(levqor.EInvalid, "The body must be a JSON object with secrets.")
	}
	in := credentials.PutInput{Connector: req.Connector, Secrets: req.Body.Secrets}
	in.Fields, in.Headers = s.credentialFields(req.Connector)
	if req.Body.Name != nil {
		in.Name = *req.Body.Name
	}
	c, err := s.credentials.Put(ctx, principalFrom(ctx).OwnerID, in)
	if err != nil {
		return nil, err
	}
	return api.PutConnection200JSONResponse(toAPIConnection(c)), nil
}

// GetConnection implements api.StrictServerInterface.
func (s *handlers) GetConnection(ctx context.Context, req api.GetConnectionRequestObject) (api.GetConnectionResponseObject, error) {
	if s.credentials == nil {
		return nil, errNoCredentialsService
	}
	c, err := s.credentials.Get(ctx, principalFrom(ctx).OwnerID, req.Connector, deref(req.Params.Name))
	if err != nil {
		return nil, err
	}
	return api.GetConnection200JSONResponse(toAPIConnection(c)), nil
}

// DeleteConnection implements api.StrictServerInterface.
func (s *handlers) DeleteConnection(ctx context.Context, req api.DeleteConnectionRequestObject) (api.DeleteConnectionResponseObject, error) {
	if s.credentials == nil {
		return nil, errNoCredentialsService
	}
	if err := s.credentials.Delete(ctx, principalFrom(ctx).OwnerID, req.Connector, deref(req.Params.Name)); err != nil {
		return nil, err
	}
	return api.DeleteConnection204Response{}, nil
}
