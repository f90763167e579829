package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// TODO(stub): replaced by the real handlers.

func (s *handlers) TrackEvent(ctx context.Context, _ api.TrackEventRequestObject) (api.TrackEventResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetMetricsSummary(ctx context.Context, _ api.GetMetricsSummaryRequestObject) (api.GetMetricsSummaryResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetMarketingSummary(ctx context.Context, _ api.GetMarketingSummaryRequestObject) (api.GetMarketingSummaryResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}
