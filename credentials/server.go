package credentials

// ServerTokens are the server-wide connector credentials of a single-tenant
// install, as plain values (main reads them from the configuration).
type ServerTokens struct {
	Slack, Notion, Telegram, Resend                     string
	GmailClientID, GmailClientSecret, GmailRefreshToken string
}

// ByConnector returns the complete credentials by connector and field (the
// connectors' CredentialFields): a connector is present only when all of its
// values are set.
func (t ServerTokens) ByConnector() map[string]map[string]string {
	out := map[string]map[string]string{}
	for connector, fields := range map[string]map[string]string{
		"slack":    {"token": t.Slack},
		"notion":   {"token": t.Notion},
		"telegram": {"token": t.Telegram},
		"email":    {"api_key": t.Resend},
		"gmail":    {"client_id": t.GmailClientID, "client_secret": t.GmailClientSecret, "refresh_token": t.GmailRefreshToken},
	} {
		complete := true
		for _, v := range fields {
			complete = complete && v != ""
		}
		if complete {
			out[connector] = fields
		}
	}
	return out
}

// GmailPartial reports whether some, but not all, of the Gmail values are set.
func (t ServerTokens) GmailPartial() bool {
	set := 0
	for _, v := range []string{t.GmailClientID, t.GmailClientSecret, t.GmailRefreshToken} {
		if v != "" {
			set++
		}
	}
	return set > 0 && set < 3
}
