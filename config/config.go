// Package config reads Levqor's LEVQOR_* environment variables once into a typed,
// validated Config. An invalid value is an error that names the variable. The
// settings are one declarative table (options.go) from which .env.example and the
// README's table are generated.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/ulule/limiter/v3"

	"github.com/levqor/levqor/billing"
)

// Engine names the database engine a DatabaseURL selects.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Config is the whole of Levqor's configuration.
type Config struct {
	Addr            string        // LEVQOR_ADDR (or PORT): where the HTTP server listens
	DataDir         string        // LEVQOR_DATA_DIR: the SQLite file, backups and generated secrets
	DatabaseURL     string        // LEVQOR_DATABASE_URL: a SQLite path or a postgres:// URL
	Engine          Engine        // derived from DatabaseURL
	SQLitePath      string        // derived: the SQLite file when Engine is SQLite
	LogLevel        slog.Level    // LEVQOR_LOG_LEVEL: debug, info, warn or error
	MaxBodyBytes    int64         // LEVQOR_MAX_BODY_BYTES: the largest request body accepted
	ShutdownTimeout time.Duration // LEVQOR_SHUTDOWN_TIMEOUT: how long requests, running jobs and unsaved completions may drain

	BackupSchedule string        // LEVQOR_BACKUP_SCHEDULE: cron spec of serve's backups; "" (off): none
	BackupGrace    time.Duration // LEVQOR_BACKUP_GRACE: how late a missed slot still runs at start-up
	BackupKeep     int           // LEVQOR_BACKUP_KEEP: how many backups retention keeps
	BackupMaxAge   time.Duration // LEVQOR_BACKUP_MAX_AGE: removes older backups, the newest excepted; 0: none
	MetricsAddr    string        // LEVQOR_METRICS_ADDR: the Prometheus listener; "": none
	Pprof          bool          // LEVQOR_PPROF: serve /debug/pprof/ on the metrics listener too
	JobRetention   time.Duration // LEVQOR_JOB_RETENTION: finished jobs and raw events older than this are pruned; 0: never

	APIKeys     []string // LEVQOR_API_KEYS: bootstrap admin keys, comma-separated
	APIKeysNext []string // LEVQOR_API_KEYS_NEXT: the next bootstrap admin keys, accepted too (rotation)

	RateLimitIP       limiter.Rate  // LEVQOR_RATE_LIMIT_IP: per client IP, unauthenticated routes
	RateLimitGlobal   limiter.Rate  // LEVQOR_RATE_LIMIT_GLOBAL: all unauthenticated traffic together
	RateLimitKey      limiter.Rate  // LEVQOR_RATE_LIMIT_KEY: per API key
	RateLimitFailOpen bool          // LEVQOR_RATE_LIMIT_FAIL: "open" (default) or "closed" when the limiter store fails
	RateLimitTimeout  time.Duration // LEVQOR_RATE_LIMIT_TIMEOUT: deadline of each call to the limiter store (Redis)
	RedisURL          string        // LEVQOR_REDIS_URL: share rate limits across instances

	Workers            int           // LEVQOR_WORKERS: jobs run at once by this process
	IntakeMaxBacklog   int           // LEVQOR_INTAKE_MAX_BACKLOG: due jobs waiting for this process before intake waits; 0 never
	IntakeBacklogWait  time.Duration // LEVQOR_INTAKE_BACKLOG_WAIT: how long held intake waits before 503
	JobLease           time.Duration // LEVQOR_JOB_LEASE: how long a claimed job is held without a heartbeat
	JobStepConcurrency int           // LEVQOR_JOB_STEP_CONCURRENCY: steps of one job run at once
	OutboundAllowHosts []string      // LEVQOR_OUTBOUND_ALLOW_HOSTS: hosts, host:port or CIDRs exempt from the SSRF guard

	SSEMaxPerKey   int           // LEVQOR_SSE_MAX_PER_KEY: job event streams one API key may hold open
	SSEMaxStreams  int           // LEVQOR_SSE_MAX_STREAMS: job event streams this process holds open in all
	SSEMaxDuration time.Duration // LEVQOR_SSE_MAX_DURATION: a stream's lifetime, after which the client reconnects

	JobMaxCostUSD    float64 // LEVQOR_JOB_MAX_COST_USD: a job's AI spending limit unless its guardrails set one
	BudgetDailyUSD   float64 // LEVQOR_BUDGET_DAILY_USD: an owner's AI spending per UTC day, unless overridden
	BudgetMonthlyUSD float64 // LEVQOR_BUDGET_MONTHLY_USD: an owner's AI spending per calendar month

	AIBaseURL    string // LEVQOR_AI_BASE_URL: an OpenAI-compatible API root (default OpenAI's)
	AIAPIKey     string // LEVQOR_AI_API_KEY: the provider's API key
	AIModel      string // LEVQOR_AI_MODEL: the model of steps that name none
	AIPricesFile string // LEVQOR_AI_PRICES: a JSON or YAML price table merged over the defaults
	PlanModel    string // LEVQOR_PLAN_MODEL: the planner's model ("": AIModel)

	SecretKey      string // LEVQOR_SECRET_KEY: 32 bytes (base64 or hex) encrypting stored credentials; empty: generated in the data dir
	HashSecret     string // LEVQOR_HASH_SECRET: keys the hash of tracked emails; empty: generated in the data dir
	DashboardToken string // LEVQOR_DASHBOARD_TOKEN: opens /dashboard; empty: no dashboard
	PublicURL      string // LEVQOR_PUBLIC_URL: the canonical site root for links, sitemap and email
	WebDir         string // LEVQOR_WEB_DIR: the marketing site's static export; empty: none
	EmailDomain    string // LEVQOR_EMAIL_DOMAIN: the domain of Levqor's senders (support@, billing@, no-reply@, security@)

	// Connector endpoints (tests and self-hosted gateways point them elsewhere) and
	// server-wide default credentials for single-tenant installs.
	SlackBaseURL      string   // LEVQOR_SLACK_BASE_URL
	NotionBaseURL     string   // LEVQOR_NOTION_BASE_URL
	GmailBaseURL      string   // LEVQOR_GMAIL_BASE_URL
	GmailTokenURL     string   // LEVQOR_GMAIL_TOKEN_URL: the OAuth2 token endpoint used to refresh
	TelegramBaseURL   string   // LEVQOR_TELEGRAM_BASE_URL
	ResendBaseURL     string   // LEVQOR_RESEND_BASE_URL
	SlackToken        string   // LEVQOR_SLACK_TOKEN
	NotionToken       string   // LEVQOR_NOTION_TOKEN
	TelegramToken     string   // LEVQOR_TELEGRAM_TOKEN
	ResendAPIKey      string   // LEVQOR_RESEND_API_KEY: the email connector's default and the notifier's key
	GmailClientID     string   // LEVQOR_GMAIL_CLIENT_ID
	GmailClientSecret string   // LEVQOR_GMAIL_CLIENT_SECRET
	GmailRefreshToken string   // LEVQOR_GMAIL_REFRESH_TOKEN
	SharedCredentials bool     // LEVQOR_SHARED_CREDENTIALS: let every owner's steps fall back to the tokens above (single-tenant installs only)
	EmailSenders      []string // LEVQOR_EMAIL_SENDERS: addresses the email connector may send from; default the four Levqor senders

	TrustedProxies []netip.Prefix // LEVQOR_TRUSTED_PROXIES: peers whose X-Forwarded-For / X-Real-IP are believed
	CORSOrigins    []string       // LEVQOR_CORS_ORIGINS: origins allowed to call the API from a browser

	// Billing (Stripe), issue 16.
	StripeSecretKey        string         // LEVQOR_STRIPE_SECRET_KEY; "" disables checkout, portal and reconcile
	StripeWebhookSecret    string         // LEVQOR_STRIPE_WEBHOOK_SECRET: whsec_…; "" disables the webhook
	StripeBaseURL          string         // LEVQOR_STRIPE_BASE_URL: Stripe's API root (stripe-mock in tests)
	StripeWebhookTolerance time.Duration  // LEVQOR_STRIPE_WEBHOOK_TOLERANCE: the oldest signature timestamp accepted
	BillingGrace           time.Duration  // LEVQOR_BILLING_GRACE: a paid plan's limits after a failed payment
	Plans                  []billing.Plan // LEVQOR_PLANS: the price table; default billing.DefaultPlans()
}

// Load parses the configuration from getenv (os.Getenv in production): each
// option of the table in options.go, in order, from its variable or else its
// default. Every invalid value is reported, each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	var c Config
	var errs []string
	for _, o := range options {
		v := getenv(o.Name)
		if o.Alias != "" {
			if av := getenv(o.Alias); av != "" {
				conv, err := o.fromAlias(av)
				if err != nil {
					errs = append(errs, o.Alias+": "+err.Error())
				} else if v == "" {
					v = conv
				}
			}
		}
		if v == "" {
			v = o.Default
		}
		if err := o.parse(&c, v); err != nil {
			errs = append(errs, o.Name+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

// splitList splits a comma-separated value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
