package server

import (
	"context"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// TODO(stub): replaced by the real handlers.

func (s *handlers) GetDashboard(ctx context.Context, _ api.GetDashboardRequestObject) (api.GetDashboardResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetLegalPage(ctx context.Context, _ api.GetLegalPageRequestObject) (api.GetLegalPageResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetFAQ(ctx context.Context, _ api.GetFAQRequestObject) (api.GetFAQResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetSecurityTxt(ctx context.Context, _ api.GetSecurityTxtRequestObject) (api.GetSecurityTxtResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetRobotsTxt(ctx context.Context, _ api.GetRobotsTxtRequestObject) (api.GetRobotsTxtResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}

func (s *handlers) GetSitemap(ctx context.Context, _ api.GetSitemapRequestObject) (api.GetSitemapResponseObject, error) {
	return nil, levqor.Errorf(levqor.EUnavailable, "not built yet")
}
