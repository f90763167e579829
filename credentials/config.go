package credentials

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/levqor/levqor/config"
)

// FromConfig builds a server's Service over st: the key from LEVQOR_SECRET_KEY,
// or else from KeyFile in the data directory (generated on first start), and the
// server-wide defaults of ServerDefaults. An invalid LEVQOR_SECRET_KEY is a
// configuration error naming the variable (never its value).
func FromConfig(cfg config.Config, st Store, log *slog.Logger) (*Service, error) {
	var key Key
	if cfg.SecretKey != "" {
		k, err := ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("invalid configuration:\n  LEVQOR_SECRET_KEY: %w", err)
		}
		key = k
		log.Info("connector credentials key", "key_id", key.ID(), "from", "LEVQOR_SECRET_KEY")
	} else {
		path := filepath.Join(cfg.DataDir, KeyFile)
		k, created, err := LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("connector credentials key (LEVQOR_SECRET_KEY unset): %w", err)
		}
		key = k
		log.Info("connector credentials key", "key_id", key.ID(), "from", path, "created", created)
		if cfg.Engine == config.Postgres {
			log.Warn("LEVQOR_SECRET_KEY is unset: this instance keeps its own key file, so connections stored through another instance will not decrypt here; set the same LEVQOR_SECRET_KEY on every instance",
				"key_file", path)
		}
	}
	if set, all := gmailSet(cfg); set > 0 && set < all {
		log.Warn("LEVQOR_GMAIL_CLIENT_ID, LEVQOR_GMAIL_CLIENT_SECRET and LEVQOR_GMAIL_REFRESH_TOKEN must all be set for server-wide Gmail credentials; ignoring them")
	}
	if !cfg.SharedCredentials && len(serverTokens(cfg)) > 0 {
		log.Warn("server-wide connector tokens are set but LEVQOR_SHARED_CREDENTIALS is not true: steps use only their owners' connections")
	}
	return NewService(st, key, ServerDefaults(cfg)), nil
}

// ServerDefaults returns the server-wide credentials of a single-tenant install by
// connector and field, from LEVQOR_SLACK_TOKEN, LEVQOR_NOTION_TOKEN,
// LEVQOR_TELEGRAM_TOKEN, LEVQOR_RESEND_API_KEY and LEVQOR_GMAIL_*. A connector is
// present only when all of its variables are set. The field names are the
// connectors' CredentialFields. Unless LEVQOR_SHARED_CREDENTIALS is true there are
// none: on a multi-tenant server every owner would otherwise act as the server's
// Slack, Notion, Telegram, Resend and Gmail accounts.
func ServerDefaults(cfg config.Config) map[string]map[string]string {
	if !cfg.SharedCredentials {
		return map[string]map[string]string{}
	}
	return serverTokens(cfg)
}

// serverTokens returns the complete server-wide credentials by connector, shared or not.
func serverTokens(cfg config.Config) map[string]map[string]string {
	out := map[string]map[string]string{}
	for connector, fields := range map[string]map[string]string{
		"slack":    {"token": cfg.SlackToken},
		"notion":   {"token": cfg.NotionToken},
		"telegram": {"token": cfg.TelegramToken},
		"email":    {"api_key": cfg.ResendAPIKey},
		"gmail":    {"client_id": cfg.GmailClientID, "client_secret": cfg.GmailClientSecret, "refresh_token": cfg.GmailRefreshToken},
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

// gmailSet counts the Gmail variables that are set, of all of them.
func gmailSet(cfg config.Config) (set, all int) {
	for _, v := range []string{cfg.GmailClientID, cfg.GmailClientSecret, cfg.GmailRefreshToken} {
		if v != "" {
			set++
		}
	}
	return set, 3
}
