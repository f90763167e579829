package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/credentials"
)

// newCredentials builds the connector credentials service over st: the key from
// LEVQOR_SECRET_KEY, or else from credentials.KeyFile in the data directory
// (generated on first start), and the server-wide defaults of serverDefaults. An
// invalid LEVQOR_SECRET_KEY is a configuration error naming the variable (never its
// value).
func newCredentials(cfg config.Config, st credentials.Store, log *slog.Logger) (*credentials.Service, error) {
	var key credentials.Key
	if cfg.SecretKey != "" {
		k, err := credentials.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("invalid configuration:\n  LEVQOR_SECRET_KEY: %w", err)
		}
		key = k
		log.Info("connector credentials key", "key_id", key.ID(), "from", "LEVQOR_SECRET_KEY")
	} else {
		path := filepath.Join(cfg.DataDir, credentials.KeyFile)
		k, created, err := credentials.LoadOrCreateKeyFile(path)
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
	tokens := serverTokens(cfg)
	if tokens.GmailPartial() {
		log.Warn("LEVQOR_GMAIL_CLIENT_ID, LEVQOR_GMAIL_CLIENT_SECRET and LEVQOR_GMAIL_REFRESH_TOKEN must all be set for server-wide Gmail credentials; ignoring them")
	}
	if !cfg.SharedCredentials && len(tokens.ByConnector()) > 0 {
		log.Warn("server-wide connector tokens are set but LEVQOR_SHARED_CREDENTIALS is not true: steps use only their owners' connections")
	}
	return credentials.NewService(st, key, serverDefaults(cfg)), nil
}

// serverDefaults returns the server-wide credentials of a single-tenant install by
// connector and field. Unless LEVQOR_SHARED_CREDENTIALS is true there are none: on a
// multi-tenant server every owner would otherwise act as the server's Slack,
// Notion, Telegram, Resend and Gmail accounts.
func serverDefaults(cfg config.Config) map[string]map[string]string {
	if !cfg.SharedCredentials {
		return map[string]map[string]string{}
	}
	return serverTokens(cfg).ByConnector()
}

// serverTokens are the LEVQOR_*_TOKEN, LEVQOR_RESEND_API_KEY and LEVQOR_GMAIL_* values.
func serverTokens(cfg config.Config) credentials.ServerTokens {
	return credentials.ServerTokens{Slack: cfg.SlackToken, Notion: cfg.NotionToken, Telegram: cfg.TelegramToken, Resend: cfg.ResendAPIKey,
		GmailClientID: cfg.GmailClientID, GmailClientSecret: cfg.GmailClientSecret, GmailRefreshToken: cfg.GmailRefreshToken}
}
