package dbrow

import "github.com/levqor/levqor/analytics"

// InsertAnalyticsEvent is the InsertAnalyticsEvent parameters of e.
func InsertAnalyticsEvent(e analytics.Event) InsertAnalyticsEventParams {
	return InsertAnalyticsEventParams{
		ID: e.ID, Type: e.Type, CreatedAt: e.At.UTC(), Path: e.Path, Ref: e.Ref, Referrer: e.Referrer,
		ReferrerHost: e.ReferrerHost, UtmSource: e.UTM.Source, UtmMedium: e.UTM.Medium, UtmCampaign: e.UTM.Campaign,
		EmailHash: e.EmailHash, Payload: NullJSON(e.Payload), Bot: e.Bot,
	}
}
