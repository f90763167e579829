package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// TODO(stub): replaced by the real handlers.

func (s *handlers) ListConnections(ctx context.Context, _ api.ListConnectionsRequestObject) (api.ListConnectionsResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) PutConnection(ctx context.Context, _ api.PutConnectionRequestObject) (api.PutConnectionResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetConnection(ctx context.Context, _ api.GetConnectionRequestObject) (api.GetConnectionResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) DeleteConnection(ctx context.Context, _ api.DeleteConnectionRequestObject) (api.DeleteConnectionResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}
