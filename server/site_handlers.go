package server

import (
	"context"
	"fmt"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/gen/api"
)

// GetDashboard implements api.StrictServerInterface. It exists only with a
// dashboard token; ?token= is exchanged for a session cookie (303 to a URL
// without it), and the session cookie opens the page.
func (s *handlers) GetDashboard(ctx context.Context, req api.GetDashboardRequestObject) (api.GetDashboardResponseObject, error) {
	auth := s.site.dashboard
	if auth == nil {
		return nil, levqor.Errorf(levqor.ENotFound, "The dashboard is not enabled.")
	}
	now := time.Now()
	if token := req.Params.Token; token != nil {
		if !auth.tokenMatches(*token) {
			return nil, levqor.Errorf(levqor.EUnauthorized, "The dashboard token is not valid.")
		}
		return api.GetDashboard303Response{Headers: api.GetDashboard303ResponseHeaders{
			Location: ptr("/dashboard"), SetCookie: ptr(auth.cookie(now)),
		}}, nil
	}
	if c := req.Params.LevqorDashboard; c == nil || !auth.sessionValid(*c, now) {
		return nil, levqor.Errorf(levqor.EUnauthorized, "Open the dashboard with its token to start a session.")
	}
	if s.analytics == nil {
		return nil, levqor.Errorf(levqor.EUnavailable, "Analytics are not configured.")
	}
	sum, err := s.analytics.Summary(ctx, dashboardQuery(now))
	if err != nil {
		return nil, fmt.Errorf("dashboard summary: %w", err)
	}
	body, err := s.site.renderDashboard(sum)
	if err != nil {
		return nil, err
	}
	return htmlPage{status: 200, body: body}, nil
}

// GetLegalPage implements api.StrictServerInterface.
func (s *handlers) GetLegalPage(ctx context.Context, req api.GetLegalPageRequestObject) (api.GetLegalPageResponseObject, error) {
	d, ok := s.site.pages["/legal/"+req.Page]
	if !ok {
		return nil, levqor.Errorf(levqor.ENotFound, "No such page: /legal/%s.", req.Page)
	}
	return respondDocument(d, req.Params.IfNoneMatch, nil), nil
}

// GetFAQ implements api.StrictServerInterface.
func (s *handlers) GetFAQ(ctx context.Context, req api.GetFAQRequestObject) (api.GetFAQResponseObject, error) {
	return respondDocument(s.site.pages["/faq"], req.Params.IfNoneMatch, nil), nil
}

// GetSecurityTxt implements api.StrictServerInterface.
func (s *handlers) GetSecurityTxt(ctx context.Context, req api.GetSecurityTxtRequestObject) (api.GetSecurityTxtResponseObject, error) {
	return respondDocument(s.site.securityTxt(time.Now()), req.Params.IfNoneMatch, nil), nil
}

// GetRobotsTxt implements api.StrictServerInterface.
func (s *handlers) GetRobotsTxt(ctx context.Context, req api.GetRobotsTxtRequestObject) (api.GetRobotsTxtResponseObject, error) {
	return respondDocument(s.site.robots, req.Params.IfNoneMatch, nil), nil
}

// GetSitemap implements api.StrictServerInterface.
func (s *handlers) GetSitemap(ctx context.Context, req api.GetSitemapRequestObject) (api.GetSitemapResponseObject, error) {
	return respondDocument(s.site.sitemap, req.Params.IfNoneMatch, nil), nil
}
