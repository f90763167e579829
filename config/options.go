package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/billing"
)

// option is one setting: its variable, its default (as written in .env.example,
// and parsed like any value), the line that documents it, and how it is parsed
// and validated into Config. .env.example and the README's table are generated
// from this table and checked against it (docs_test.go).
type option struct {
	Name       string // the environment variable
	Default    string // used when the variable is unset or empty; "" means none
	DefaultDoc string // the README's default when it is not Default itself (derived or generated)
	Doc        string // what it does, one line (README and .env.example)

	// Alias is an older or conventional variable (PORT) used when Name is unset;
	// fromAlias validates it and converts it to Name's form.
	Alias     string
	fromAlias func(v string) (string, error)

	// parse sets the option's field from v, the value or the default (maybe "");
	// its error says what was wanted, without the variable's name.
	parse func(c *Config, v string) error
}

// Options are read in this order; an option may use the fields set before it
// (LEVQOR_DATABASE_URL the data dir, LEVQOR_EMAIL_SENDERS the email domain).
var options = []option{
	{Name: "LEVQOR_ADDR", Default: ":8080", Doc: "where the HTTP server listens (host:port); PORT=8080 is honoured when it is unset",
		Alias: "PORT", fromAlias: portAlias, parse: parseAddr},
	{Name: "LEVQOR_DATA_DIR", Default: "./data", Doc: "the data directory: the SQLite file (levqor.db), its lock file, backups and generated secrets",
		parse: text(func(c *Config) *string { return &c.DataDir })},
	{Name: "LEVQOR_DATABASE_URL", DefaultDoc: "SQLite at `$LEVQOR_DATA_DIR/levqor.db`",
		Doc:   "a SQLite path (or sqlite://path) picks another SQLite file; postgres://user:pass@host:5432/db selects PostgreSQL",
		parse: parseDatabaseURL},
	{Name: "LEVQOR_LOG_LEVEL", Default: "info", Doc: "debug, info, warn or error; logs are JSON lines on standard output",
		parse: parseLogLevel},
	{Name: "LEVQOR_MAX_BODY_BYTES", Default: "524288", Doc: "the largest request body accepted, in bytes (1024..67108864); larger bodies get 413",
		parse: parseMaxBodyBytes},
	{Name: "LEVQOR_SHUTDOWN_TIMEOUT", Default: "15s", Doc: "drain bound on SIGTERM/SIGINT: in-flight requests, running jobs and retries of unsaved completions (then left to their leases)",
		parse: duration(time.Nanosecond, 10*time.Minute, "want a duration such as 15s, at most 10m", func(c *Config) *time.Duration { return &c.ShutdownTimeout })},

	// Backups (docs/adr/0012): the daily backup inside serve and the retention of backup files.
	{Name: "LEVQOR_BACKUP_SCHEDULE", Default: "0 0 * * *", Doc: "when serve backs the database up: a 5-field cron spec in UTC (or CRON_TZ=Zone …, or @daily); off disables it",
		parse: parseBackupSchedule},
	{Name: "LEVQOR_BACKUP_GRACE", Default: "15m", Doc: "misfire grace: a server that starts this long after a missed backup slot still runs it (0s: never late)",
		parse: duration(0, 7*24*time.Hour, "want a duration from 0s to 168h", func(c *Config) *time.Duration { return &c.BackupGrace })},
	{Name: "LEVQOR_BACKUP_KEEP", Default: "14", Doc: "how many backups retention keeps (levqor backup and the daily backup; 1..10000)",
		parse: intIn(1, MaxBackupKeep, func(c *Config) *int { return &c.BackupKeep })},
	{Name: "LEVQOR_BACKUP_MAX_AGE", DefaultDoc: "— (no age limit)", Doc: "also removes backups older than this (such as 720h), the newest backup excepted",
		parse: optionalDuration(func(c *Config) *time.Duration { return &c.BackupMaxAge })},
	{Name: "LEVQOR_METRICS_ADDR", DefaultDoc: "— (off)", Doc: "where Prometheus /metrics is served (host:port such as 127.0.0.1:9090), a listener of its own apart from the API; empty: no metrics listener",
		parse: parseMetricsAddr},
	{Name: "LEVQOR_PPROF", Default: "false", Doc: "true also serves Go's profiles (/debug/pprof/) on the LEVQOR_METRICS_ADDR listener, for profiling; keep that listener private",
		parse: oneOf("want true or false", "true", "false", func(c *Config) *bool { return &c.Pprof })},
	{Name: "LEVQOR_JOB_RETENTION", Default: "720h", Doc: "finished jobs (and their idempotency keys) and raw analytics events older than this are pruned in small batches (rollups are kept); 0s keeps them forever",
		parse: parseJobRetention},

	{Name: "LEVQOR_API_KEYS", Doc: "bootstrap admin keys (comma-separated, 16-256 characters each), accepted beside stored keys; with none configured and none stored, authenticated routes answer 401",
		parse: apiKeys(func(c *Config) *[]string { return &c.APIKeys })},
	{Name: "LEVQOR_API_KEYS_NEXT", Doc: "the next bootstrap admin keys, accepted too: rotate by adding the new key here, deploying, then moving it to LEVQOR_API_KEYS",
		parse: apiKeys(func(c *Config) *[]string { return &c.APIKeysNext })},
	{Name: "LEVQOR_RATE_LIMIT_IP", Default: "20-M", Doc: "rate limit per client IP on unauthenticated routes (ulule/limiter format count-S|M|H|D)",
		parse: rate(func(c *Config) *limiter.Rate { return &c.RateLimitIP })},
	{Name: "LEVQOR_RATE_LIMIT_GLOBAL", Default: "200-M", Doc: "rate limit of all unauthenticated traffic together",
		parse: rate(func(c *Config) *limiter.Rate { return &c.RateLimitGlobal })},
	{Name: "LEVQOR_RATE_LIMIT_KEY", Default: "600-M", Doc: "rate limit per API key",
		parse: rate(func(c *Config) *limiter.Rate { return &c.RateLimitKey })},
	{Name: "LEVQOR_RATE_LIMIT_FAIL", Default: "open", Doc: "when the rate-limit store (Redis) fails: open (allow, and log) or closed (503)",
		parse: oneOf("want open or closed", "open", "closed", func(c *Config) *bool { return &c.RateLimitFailOpen })},
	{Name: "LEVQOR_RATE_LIMIT_TIMEOUT", Default: "75ms", Doc: "deadline of each call to the rate-limit store (Redis), with no retries; past it the request is limited as LEVQOR_RATE_LIMIT_FAIL says",
		parse: duration(time.Millisecond, 5*time.Second, "want a duration from 1ms to 5s", func(c *Config) *time.Duration { return &c.RateLimitTimeout })},
	{Name: "LEVQOR_REDIS_URL", Doc: "Redis for rate limits shared by several instances; empty keeps them in memory",
		parse: parseRedisURL},
	{Name: "LEVQOR_TRUSTED_PROXIES", Doc: "peers (IPs or CIDRs) whose X-Forwarded-For / X-Real-IP / X-Forwarded-Proto are believed",
		parse: parseTrustedProxies},
	{Name: "LEVQOR_CORS_ORIGINS", Default: "https://levqor.ai,https://app.levqor.ai,https://levqor-web.vercel.app",
		Doc:   "browser origins allowed by CORS (comma-separated); other origins get no CORS headers",
		parse: parseCORSOrigins},

	{Name: "LEVQOR_WORKERS", Default: "64", Doc: "jobs this process runs at once",
		parse: intIn(1, 1024, func(c *Config) *int { return &c.Workers })},
	{Name: "LEVQOR_INTAKE_MAX_BACKLOG", Default: "10000", Doc: "intake's flow control: while this many due jobs that intake queued wait for this process's workers, intake of more due jobs (not of scheduled ones) waits for the workers to catch up; 0 never holds intake",
		parse: intIn(0, 100_000_000, func(c *Config) *int { return &c.IntakeMaxBacklog })},
	{Name: "LEVQOR_INTAKE_BACKLOG_WAIT", Default: "10s", Doc: "how long intake held by LEVQOR_INTAKE_MAX_BACKLOG waits before it answers 503 with Retry-After",
		parse: duration(0, 30*time.Second, "want a duration from 0s to 30s (under the server's 60 s write timeout)", func(c *Config) *time.Duration { return &c.IntakeBacklogWait })},
	{Name: "LEVQOR_JOB_LEASE", Default: "30s", Doc: "how long a claimed job is held without a heartbeat (a crashed instance's jobs return to the queue after it on PostgreSQL; SQLite rescues at start)",
		parse: duration(time.Second, time.Hour, "want a duration from 1s to 1h", func(c *Config) *time.Duration { return &c.JobLease })},
	{Name: "LEVQOR_JOB_STEP_CONCURRENCY", Default: "4", Doc: "steps of one job (independent steps, for_each items) run at once, unless its guardrails.concurrency sets another",
		parse: intIn(1, 32, func(c *Config) *int { return &c.JobStepConcurrency })},
	// Event streams: see server.StreamLimits for why these defaults.
	{Name: "LEVQOR_SSE_MAX_PER_KEY", Default: "10", Doc: "job event streams (GET /api/v1/jobs/{id}/events) one API key may hold open; 429 past it",
		parse: intIn(1, 10000, func(c *Config) *int { return &c.SSEMaxPerKey })},
	{Name: "LEVQOR_SSE_MAX_STREAMS", Default: "1000", Doc: "job event streams this process may hold open; 503 past it",
		parse: intIn(1, 1000000, func(c *Config) *int { return &c.SSEMaxStreams })},
	{Name: "LEVQOR_SSE_MAX_DURATION", Default: "15m", Doc: "an event stream's lifetime; it then ends with retry: and the client resumes with Last-Event-ID",
		parse: duration(time.Second, 24*time.Hour, "want a duration from 1s to 24h", func(c *Config) *time.Duration { return &c.SSEMaxDuration })},
	{Name: "LEVQOR_OUTBOUND_ALLOW_HOSTS", Doc: "hosts, host:port or CIDRs that user-supplied URLs (http connector, callback_url) may reach although loopback/private; empty: public addresses only",
		parse: list(func(c *Config) *[]string { return &c.OutboundAllowHosts })},

	{Name: "LEVQOR_JOB_MAX_COST_USD", Default: "0.35", Doc: "a job's AI spending limit (USD) unless its guardrails.max_cost_usd sets another",
		parse: dollars(func(c *Config) *float64 { return &c.JobMaxCostUSD })},
	{Name: "LEVQOR_BUDGET_DAILY_USD", Default: "10", Doc: "an owner's AI spending per UTC day (USD), unless an override is stored (PUT /api/v1/budgets/{owner_id})",
		parse: dollars(func(c *Config) *float64 { return &c.BudgetDailyUSD })},
	{Name: "LEVQOR_BUDGET_MONTHLY_USD", Default: "200", Doc: "an owner's AI spending per calendar month (USD), unless an override is stored",
		parse: dollars(func(c *Config) *float64 { return &c.BudgetMonthlyUSD })},

	{Name: "LEVQOR_AI_BASE_URL", Default: "https://api.openai.com/v1", Doc: "the ai connector's endpoint: any OpenAI-compatible Chat Completions API",
		parse: httpURL(func(c *Config) *string { return &c.AIBaseURL })},
	{Name: "LEVQOR_AI_API_KEY", Doc: "the AI provider's API key",
		parse: text(func(c *Config) *string { return &c.AIAPIKey })},
	{Name: "LEVQOR_AI_MODEL", Default: "gpt-4o-mini", Doc: "the model of ai steps that name none",
		parse: text(func(c *Config) *string { return &c.AIModel })},
	{Name: "LEVQOR_AI_PRICES", DefaultDoc: "built-in table", Doc: "a JSON or YAML price table (USD per million input/output tokens per model) merged over the defaults; a model with no price is refused",
		parse: text(func(c *Config) *string { return &c.AIPricesFile })},
	{Name: "LEVQOR_PLAN_MODEL", DefaultDoc: "`$LEVQOR_AI_MODEL`", Doc: "the model POST /api/v1/plan asks for a workflow (through the ai connector's endpoint and prices)",
		parse: text(func(c *Config) *string { return &c.PlanModel })},

	{Name: "LEVQOR_SECRET_KEY", DefaultDoc: "generated into `$LEVQOR_DATA_DIR/secret.key`",
		Doc:   "32 bytes (base64 or 64 hex digits) encrypting stored connector credentials (AES-256-GCM); back the generated file up with the database, and set one value on every PostgreSQL instance (docs/adr/0009)",
		parse: text(func(c *Config) *string { return &c.SecretKey })},
	{Name: "LEVQOR_HASH_SECRET", DefaultDoc: "generated into `$LEVQOR_DATA_DIR/hash.secret`",
		Doc:   "keys the HMAC of tracked emails (at least 16 characters); set one value on every PostgreSQL instance so an email hashes alike",
		parse: secret(func(c *Config) *string { return &c.HashSecret })},
	{Name: "LEVQOR_DASHBOARD_TOKEN", DefaultDoc: "— (no dashboard)", Doc: "opens /dashboard?token=… (exchanged for a session cookie; at least 16 characters)",
		parse: secret(func(c *Config) *string { return &c.DashboardToken })},
	{Name: "LEVQOR_PUBLIC_URL", Default: "https://levqor.ai", Doc: "the canonical site root of links in pages, the sitemap, security.txt and emails",
		parse: httpURL(func(c *Config) *string { return &c.PublicURL })},
	{Name: "LEVQOR_WEB_DIR", DefaultDoc: "— (no site: `/` answers the JSON index)",
		Doc:   "the marketing site's static export (web/out), served at / and its paths; read once at start-up",
		parse: text(func(c *Config) *string { return &c.WebDir })},
	{Name: "LEVQOR_EMAIL_DOMAIN", Default: "levqor.ai", Doc: "the domain of Levqor's own senders (support@, billing@, no-reply@, security@)",
		parse: parseEmailDomain},
	{Name: "LEVQOR_EMAIL_SENDERS", DefaultDoc: "support@, billing@, no-reply@, security@ `$LEVQOR_EMAIL_DOMAIN`",
		Doc:   "the addresses the email connector may send from (comma-separated)",
		parse: parseEmailSenders},

	{Name: "LEVQOR_SLACK_BASE_URL", Default: "https://slack.com/api/", Doc: "the slack connector's endpoint (a gateway or a local fake)",
		parse: httpURL(func(c *Config) *string { return &c.SlackBaseURL })},
	{Name: "LEVQOR_NOTION_BASE_URL", Default: "https://api.notion.com", Doc: "the notion connector's endpoint",
		parse: httpURL(func(c *Config) *string { return &c.NotionBaseURL })},
	{Name: "LEVQOR_GMAIL_BASE_URL", Default: "https://gmail.googleapis.com/", Doc: "the gmail connector's endpoint",
		parse: httpURL(func(c *Config) *string { return &c.GmailBaseURL })},
	{Name: "LEVQOR_GMAIL_TOKEN_URL", Default: "https://oauth2.googleapis.com/token", Doc: "the OAuth2 token endpoint the gmail connector refreshes through",
		parse: httpURL(func(c *Config) *string { return &c.GmailTokenURL })},
	{Name: "LEVQOR_TELEGRAM_BASE_URL", Default: "https://api.telegram.org", Doc: "the telegram connector's endpoint",
		parse: httpURL(func(c *Config) *string { return &c.TelegramBaseURL })},
	{Name: "LEVQOR_RESEND_BASE_URL", Default: "https://api.resend.com/", Doc: "Resend's endpoint, for the email connector and Levqor's own email",
		parse: httpURL(func(c *Config) *string { return &c.ResendBaseURL })},
	{Name: "LEVQOR_SLACK_TOKEN", Doc: "server-wide Slack token (single-tenant installs, used only with LEVQOR_SHARED_CREDENTIALS=true)",
		parse: text(func(c *Config) *string { return &c.SlackToken })},
	{Name: "LEVQOR_NOTION_TOKEN", Doc: "server-wide Notion token (as LEVQOR_SLACK_TOKEN)",
		parse: text(func(c *Config) *string { return &c.NotionToken })},
	{Name: "LEVQOR_TELEGRAM_TOKEN", Doc: "server-wide Telegram bot token (as LEVQOR_SLACK_TOKEN)",
		parse: text(func(c *Config) *string { return &c.TelegramToken })},
	{Name: "LEVQOR_RESEND_API_KEY", Doc: "Levqor's own email (without it, system emails are logged and dropped) and the email connector's server-wide key (as LEVQOR_SLACK_TOKEN)",
		parse: text(func(c *Config) *string { return &c.ResendAPIKey })},
	{Name: "LEVQOR_GMAIL_CLIENT_ID", Doc: "server-wide Gmail OAuth2 client id (all three Gmail variables, as LEVQOR_SLACK_TOKEN)",
		parse: text(func(c *Config) *string { return &c.GmailClientID })},
	{Name: "LEVQOR_GMAIL_CLIENT_SECRET", Doc: "server-wide Gmail OAuth2 client secret",
		parse: text(func(c *Config) *string { return &c.GmailClientSecret })},
	{Name: "LEVQOR_GMAIL_REFRESH_TOKEN", Doc: "server-wide Gmail OAuth2 refresh token",
		parse: text(func(c *Config) *string { return &c.GmailRefreshToken })},
	{Name: "LEVQOR_SHARED_CREDENTIALS", Default: "false", Doc: "single-tenant installs only: true lets every owner's steps without a connection of their own use the server-wide tokens above; false: such steps fail no_credentials",
		parse: oneOf("want true or false", "true", "false", func(c *Config) *bool { return &c.SharedCredentials })},

	{Name: "LEVQOR_STRIPE_SECRET_KEY", DefaultDoc: "— (billing off: checkout and portal answer 503)", Doc: "Stripe secret or restricted key (sk_… / rk_…) for checkout, the billing portal, webhook re-reads and `levqor billing reconcile`",
		parse: stripeKey},
	{Name: "LEVQOR_STRIPE_WEBHOOK_SECRET", DefaultDoc: "— (POST /billing/webhook answers 503)", Doc: "the signing secret (whsec_…) of the Stripe webhook endpoint pointing at /billing/webhook",
		parse: stripeWebhookSecret},
	{Name: "LEVQOR_STRIPE_BASE_URL", Default: "https://api.stripe.com", Doc: "Stripe's API root (stripe-mock in tests)",
		parse: httpURL(func(c *Config) *string { return &c.StripeBaseURL })},
	{Name: "LEVQOR_STRIPE_WEBHOOK_TOLERANCE", Default: "5m", Doc: "the oldest Stripe webhook signature timestamp accepted (replay window)",
		parse: duration(time.Second, time.Hour, "want a duration from 1s to 1h", func(c *Config) *time.Duration { return &c.StripeWebhookTolerance })},
	{Name: "LEVQOR_BILLING_GRACE", Default: "72h", Doc: "how long a paid plan's limits still apply after a failed payment, before the free plan's do",
		parse: duration(0, 90*24*time.Hour, "want a duration from 0s to 2160h", func(c *Config) *time.Duration { return &c.BillingGrace })},
	{Name: "LEVQOR_PLANS", DefaultDoc: "free, pro_monthly ($19), pro_annual ($190) (docs/adr/0015)",
		Doc:   "the price table as JSON: a list of {id, name, price_id, amount_usd, interval, limits: {monthly_ai_usd, daily_ai_usd, jobs_per_minute}} with a plan \"free\"",
		parse: parsePlans},
}

// stripeKey is an optional Stripe secret or restricted key.
func stripeKey(c *Config, v string) error {
	if v != "" && !strings.HasPrefix(v, "sk_") && !strings.HasPrefix(v, "rk_") {
		return errors.New("want a Stripe secret key (sk_…) or restricted key (rk_…)") // never echo a key
	}
	c.StripeSecretKey = v
	return nil
}

// stripeWebhookSecret is an optional webhook signing secret.
func stripeWebhookSecret(c *Config, v string) error {
	if v != "" && !strings.HasPrefix(v, "whsec_") {
		return errors.New("want a webhook signing secret (whsec_…)")
	}
	c.StripeWebhookSecret = v
	return nil
}

// parsePlans reads the price table, or keeps the default one.
func parsePlans(c *Config, v string) error {
	if v == "" {
		c.Plans = billing.DefaultPlans()
		return nil
	}
	plans, err := billing.ParsePlans(v)
	if err != nil {
		return err
	}
	c.Plans = plans
	return nil
}

// text keeps the value as it is.
func text(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = v
		return nil
	}
}

// secret is an optional value of at least 16 characters.
func secret(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" && len(v) < 16 {
			return errors.New("want at least 16 characters")
		}
		*field(c) = v
		return nil
	}
}

// list is a comma-separated list, blanks dropped.
func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = splitList(v)
		return nil
	}
}

// intIn is a whole number from min to max.
func intIn(min, max int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return fmt.Errorf("want a whole number from %d to %d, got %q", min, max, v)
		}
		*field(c) = n
		return nil
	}
}

// duration is a time.Duration from min to max; want describes the range.
func duration(min, max time.Duration, want string, field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min || d > max {
			return fmt.Errorf("%s, got %q", want, v)
		}
		*field(c) = d
		return nil
	}
}

// dollars is an amount of US dollars from 0 to a million.
func dollars(field func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1e6 {
			return fmt.Errorf("want a number of US dollars from 0 to 1000000, got %q", v)
		}
		*field(c) = f
		return nil
	}
}

// oneOf is one of two words, yes and no, setting a bool.
func oneOf(want, yes, no string, field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch v {
		case yes:
			*field(c) = true
		case no:
			*field(c) = false
		default:
			return fmt.Errorf("%s, got %q", want, v)
		}
		return nil
	}
}

// rate is a rate limit in ulule/limiter's format.
func rate(field func(*Config) *limiter.Rate) func(*Config, string) error {
	return func(c *Config, v string) error {
		r, err := limiter.NewRateFromFormatted(v)
		if err != nil || r.Limit <= 0 {
			return fmt.Errorf("want a rate such as 20-M (count-S|M|H|D), got %q", v)
		}
		*field(c) = r
		return nil
	}
}

// httpURL is an http(s) URL without credentials, query or fragment.
func httpURL(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("want an http(s) URL without credentials or query, got %q", v)
		}
		*field(c) = v
		return nil
	}
}

// apiKeys are bootstrap admin keys, each 16 to 256 characters long.
func apiKeys(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		keys := splitList(v)
		for _, k := range keys {
			if len(k) < 16 || len(k) > 256 {
				return errors.New("each key must be 16 to 256 characters long")
			}
		}
		*field(c) = keys
		return nil
	}
}

// portAlias turns PORT into LEVQOR_ADDR's form.
func portAlias(v string) (string, error) {
	if p, err := strconv.Atoi(v); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("want a port number 0-65535, got %q", v)
	}
	return ":" + v, nil
}

func parseAddr(c *Config, v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port such as :8080 or 127.0.0.1:8080, got %q", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number 0-65535", port)
	}
	c.Addr = v
	return nil
}

// parseDatabaseURL picks the engine; its errors never repeat the URL, which may
// hold a password.
func parseDatabaseURL(c *Config, u string) error {
	c.DatabaseURL = u
	switch {
	case u == "":
		c.Engine, c.SQLitePath = SQLite, filepath.Join(c.DataDir, "levqor.db")
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		c.Engine = Postgres
	case strings.HasPrefix(u, "sqlite://"):
		c.Engine, c.SQLitePath = SQLite, strings.TrimPrefix(u, "sqlite://")
	case strings.HasPrefix(u, "file:"):
		c.Engine, c.SQLitePath = SQLite, strings.TrimPrefix(u, "file:")
	case !strings.Contains(u, "://"):
		c.Engine, c.SQLitePath = SQLite, u
	default:
		return errors.New("want a SQLite path (or sqlite://path) or a postgres:// URL")
	}
	if c.Engine == SQLite && (c.SQLitePath == "" || strings.ContainsAny(c.SQLitePath, "?#")) {
		return errors.New("want a plain SQLite file path without query options")
	}
	return nil
}

// MaxBackupKeep bounds LEVQOR_BACKUP_KEEP (and levqor backup --keep): about 27 years
// of daily backups.
const MaxBackupKeep = 10_000

// MinJobRetention is the shortest LEVQOR_JOB_RETENTION: idempotency keys promise 24 h, so
// a finished job (which holds its key) is kept at least that long.
const MinJobRetention = 24 * time.Hour

func parseBackupSchedule(c *Config, v string) error {
	if v == "off" {
		c.BackupSchedule = ""
		return nil
	}
	if _, err := backup.ParseSchedule(v); err != nil {
		return fmt.Errorf("want a cron spec such as \"0 0 * * *\" (or off): %v", err)
	}
	c.BackupSchedule = v
	return nil
}

// optionalDuration is a non-negative duration, or empty for none (0).
func optionalDuration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			*field(c) = 0
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 720h, got %q", v)
		}
		*field(c) = d
		return nil
	}
}

func parseMetricsAddr(c *Config, v string) error {
	if v == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:9090, got %q", v)
	}
	c.MetricsAddr = v
	return nil
}

func parseJobRetention(c *Config, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || (d != 0 && d < MinJobRetention) {
		return fmt.Errorf("want 0s (keep forever) or a duration of at least 24h such as 720h, got %q", v)
	}
	c.JobRetention = d
	return nil
}

func parseLogLevel(c *Config, v string) error {
	if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("want debug, info, warn or error, got %q", v)
	}
	return nil
}

func parseMaxBodyBytes(c *Config, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1024 || n > 64<<20 {
		return fmt.Errorf("want a whole number of bytes from 1024 to 67108864, got %q", v)
	}
	c.MaxBodyBytes = n
	return nil
}

func parseRedisURL(c *Config, v string) error {
	if v == "" {
		return nil
	}
	if _, err := redis.ParseURL(v); err != nil {
		return errors.New("want redis://[user:pass@]host:port/db")
	}
	c.RedisURL = v
	return nil
}

// parseTrustedProxies takes IP addresses (as single-address prefixes) and CIDRs.
func parseTrustedProxies(c *Config, v string) error {
	var errs []string
	for _, s := range splitList(v) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, fmt.Sprintf("want IP addresses or CIDRs, got %q", s))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func parseCORSOrigins(c *Config, v string) error {
	var errs []string
	for _, o := range splitList(v) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			errs = append(errs, fmt.Sprintf("want origins such as https://app.levqor.ai, got %q", o))
			continue
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func parseEmailDomain(c *Config, v string) error {
	if strings.ContainsAny(v, "@ <>\r\n,;\"") {
		return fmt.Errorf("want a bare domain such as levqor.ai, got %q", v)
	}
	c.EmailDomain = v
	return nil
}

// parseEmailSenders defaults to Levqor's four senders at LEVQOR_EMAIL_DOMAIN.
func parseEmailSenders(c *Config, v string) error {
	c.EmailSenders = splitList(v)
	if len(c.EmailSenders) == 0 {
		for _, local := range []string{"support", "billing", "no-reply", "security"} {
			c.EmailSenders = append(c.EmailSenders, local+"@"+c.EmailDomain)
		}
	}
	return nil
}
