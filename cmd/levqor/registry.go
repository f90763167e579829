package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/ai"
	"github.com/levqor/levqor/connectors/core"
	"github.com/levqor/levqor/connectors/email"
	"github.com/levqor/levqor/connectors/gmail"
	"github.com/levqor/levqor/connectors/httpcall"
	"github.com/levqor/levqor/connectors/notion"
	"github.com/levqor/levqor/connectors/slack"
	"github.com/levqor/levqor/connectors/telegram"
	"github.com/levqor/levqor/outbound"
)

// newRegistry builds every connector. User-supplied URLs (the http connector) go
// through guard; the operator's configured endpoints go through a guard that also
// allows their hosts, so a self-hosted gateway on a private address works without
// opening that address to users' steps.
func newRegistry(cfg config.Config, guard *outbound.Guard, creds connectors.Credentials) (*connectors.Registry, error) {
	endpoints := []string{cfg.AIBaseURL, cfg.SlackBaseURL, cfg.NotionBaseURL, cfg.GmailBaseURL, cfg.GmailTokenURL,
		cfg.TelegramBaseURL, cfg.ResendBaseURL}
	allow := append([]string(nil), cfg.OutboundAllowHosts...)
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil {
			return nil, err
		}
		allow = append(allow, u.Host)
	}
	vendors, err := outbound.NewGuard(allow)
	if err != nil {
		return nil, fmt.Errorf("connector endpoints: %w", err)
	}

	prices := ai.DefaultPrices()
	if cfg.AIPricesFile != "" {
		if prices, err = ai.LoadPrices(cfg.AIPricesFile); err != nil {
			return nil, fmt.Errorf("LEVQOR_AI_PRICES: %w", err)
		}
	}
	aiConn, err := ai.New(ai.Config{
		BaseURL: cfg.AIBaseURL, APIKey: cfg.AIAPIKey, DefaultModel: cfg.AIModel, Prices: prices,
		HTTPClient: vendors.Client(5 * time.Minute),
	})
	if err != nil {
		return nil, fmt.Errorf("ai connector: %w", err)
	}
	slackConn, err := slack.New(slack.Config{BaseURL: cfg.SlackBaseURL, HTTPClient: vendors.Client(time.Minute), Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("slack connector: %w", err)
	}
	// get_updates may long-poll for up to 50 s.
	telegramConn, err := telegram.New(telegram.Config{BaseURL: cfg.TelegramBaseURL, HTTPClient: vendors.Client(90 * time.Second), Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("telegram connector: %w", err)
	}
	notionConn, err := notion.New(notion.Config{BaseURL: cfg.NotionBaseURL, HTTPClient: vendors.Client(time.Minute), Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("notion connector: %w", err)
	}
	gmailConn, err := gmail.New(gmail.Config{BaseURL: cfg.GmailBaseURL, TokenURL: cfg.GmailTokenURL, HTTPClient: vendors.Client(time.Minute), Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("gmail connector: %w", err)
	}
	emailConn, err := email.New(email.Config{BaseURL: cfg.ResendBaseURL, HTTPClient: vendors.Client(time.Minute), Credentials: creds,
		Senders: cfg.EmailSenders, PublicURL: cfg.PublicURL})
	if err != nil {
		return nil, fmt.Errorf("email connector: %w", err)
	}
	return connectors.NewRegistry(core.New(), httpcall.New(guard).WithCredentials(creds), aiConn, slackConn, telegramConn, notionConn, gmailConn, emailConn)
}
