// Package config reads Levqor's LEVQOR_* environment variables once into a typed,
// validated Config. An invalid value is an error that names the variable.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
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

	APIKeys     []string // LEVQOR_API_KEYS: bootstrap admin keys, comma-separated
	APIKeysNext []string // LEVQOR_API_KEYS_NEXT: the next bootstrap admin keys, accepted too (rotation)

	RateLimitIP       limiter.Rate // LEVQOR_RATE_LIMIT_IP: per client IP, unauthenticated routes
	RateLimitGlobal   limiter.Rate // LEVQOR_RATE_LIMIT_GLOBAL: all unauthenticated traffic together
	RateLimitKey      limiter.Rate // LEVQOR_RATE_LIMIT_KEY: per API key
	RateLimitFailOpen bool         // LEVQOR_RATE_LIMIT_FAIL: "open" (default) or "closed" when the limiter store fails
	RedisURL          string       // LEVQOR_REDIS_URL: share rate limits across instances

	Workers            int           // LEVQOR_WORKERS: jobs run at once by this process
	JobLease           time.Duration // LEVQOR_JOB_LEASE: how long a claimed job is held without a heartbeat
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

	SecretKey      string // LEVQOR_SECRET_KEY: 32 bytes (base64 or hex) encrypting stored credentials; empty: generated in the data dir
	HashSecret     string // LEVQOR_HASH_SECRET: keys the hash of tracked emails; empty: generated in the data dir
	DashboardToken string // LEVQOR_DASHBOARD_TOKEN: opens /dashboard; empty: no dashboard
	PublicURL      string // LEVQOR_PUBLIC_URL: the canonical site root for links, sitemap and email
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
}

// Rate-limit defaults: no looser than the seed's (20 per minute per IP, 200 per
// minute for all unauthenticated traffic).
const (
	DefaultRateLimitIP     = "20-M"
	DefaultRateLimitGlobal = "200-M"
	DefaultRateLimitKey    = "600-M"
	DefaultCORSOrigins     = "https://levqor.ai,https://app.levqor.ai,https://levqor-web.vercel.app"
)

// Load parses the configuration from getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:            ":8080",
		DataDir:         "./data",
		LogLevel:        slog.LevelInfo,
		MaxBodyBytes:    512 << 10,
		ShutdownTimeout: 15 * time.Second,
	}
	var errs []string
	fail := func(name, format string, args ...any) {
		errs = append(errs, name+": "+fmt.Sprintf(format, args...))
	}

	if v := getenv("PORT"); v != "" {
		if p, err := strconv.Atoi(v); err != nil || p < 0 || p > 65535 {
			fail("PORT", "want a port number 0-65535, got %q", v)
		} else {
			c.Addr = ":" + v
		}
	}
	if v := getenv("LEVQOR_ADDR"); v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil {
			fail("LEVQOR_ADDR", "want host:port such as :8080 or 127.0.0.1:8080, got %q", v)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			fail("LEVQOR_ADDR", "port %q is not a number 0-65535", port)
		} else {
			c.Addr = v
		}
	}
	if v := getenv("LEVQOR_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	c.DatabaseURL = getenv("LEVQOR_DATABASE_URL")
	switch u := c.DatabaseURL; {
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
		fail("LEVQOR_DATABASE_URL", "want a SQLite path (or sqlite://path) or a postgres:// URL")
	}
	if c.Engine == SQLite && (c.SQLitePath == "" || strings.ContainsAny(c.SQLitePath, "?#")) {
		fail("LEVQOR_DATABASE_URL", "want a plain SQLite file path without query options")
	}
	if v := getenv("LEVQOR_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			fail("LEVQOR_LOG_LEVEL", "want debug, info, warn or error, got %q", v)
		}
	}
	if v := getenv("LEVQOR_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 || n > 64<<20 {
			fail("LEVQOR_MAX_BODY_BYTES", "want a whole number of bytes from 1024 to 67108864, got %q", v)
		} else {
			c.MaxBodyBytes = n
		}
	}
	if v := getenv("LEVQOR_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 10*time.Minute {
			fail("LEVQOR_SHUTDOWN_TIMEOUT", "want a duration such as 15s, at most 10m, got %q", v)
		} else {
			c.ShutdownTimeout = d
		}
	}
	c.APIKeys = splitList(getenv("LEVQOR_API_KEYS"))
	c.APIKeysNext = splitList(getenv("LEVQOR_API_KEYS_NEXT"))
	for name, keys := range map[string][]string{"LEVQOR_API_KEYS": c.APIKeys, "LEVQOR_API_KEYS_NEXT": c.APIKeysNext} {
		for _, k := range keys {
			if len(k) < 16 || len(k) > 256 {
				fail(name, "each key must be 16 to 256 characters long")
				break
			}
		}
	}
	rates := []struct {
		name, def string
		dst       *limiter.Rate
	}{
		{"LEVQOR_RATE_LIMIT_IP", DefaultRateLimitIP, &c.RateLimitIP},
		{"LEVQOR_RATE_LIMIT_GLOBAL", DefaultRateLimitGlobal, &c.RateLimitGlobal},
		{"LEVQOR_RATE_LIMIT_KEY", DefaultRateLimitKey, &c.RateLimitKey},
	}
	for _, r := range rates {
		v := getenv(r.name)
		if v == "" {
			v = r.def
		}
		rate, err := limiter.NewRateFromFormatted(v)
		if err != nil || rate.Limit <= 0 {
			fail(r.name, "want a rate such as 20-M (count-S|M|H|D), got %q", v)
			continue
		}
		*r.dst = rate
	}
	switch v := getenv("LEVQOR_RATE_LIMIT_FAIL"); v {
	case "", "open":
		c.RateLimitFailOpen = true
	case "closed":
	default:
		fail("LEVQOR_RATE_LIMIT_FAIL", "want open or closed, got %q", v)
	}
	if v := getenv("LEVQOR_REDIS_URL"); v != "" {
		if _, err := redis.ParseURL(v); err != nil {
			fail("LEVQOR_REDIS_URL", "want redis://[user:pass@]host:port/db")
		} else {
			c.RedisURL = v
		}
	}
	for _, v := range splitList(getenv("LEVQOR_TRUSTED_PROXIES")) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				fail("LEVQOR_TRUSTED_PROXIES", "want IP addresses or CIDRs, got %q", v)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	c.Workers = 64
	if v := getenv("LEVQOR_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			fail("LEVQOR_WORKERS", "want a whole number from 1 to 1024, got %q", v)
		} else {
			c.Workers = n
		}
	}
	c.JobLease = 30 * time.Second
	if v := getenv("LEVQOR_JOB_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			fail("LEVQOR_JOB_LEASE", "want a duration from 1s to 1h, got %q", v)
		} else {
			c.JobLease = d
		}
	}
	c.OutboundAllowHosts = splitList(getenv("LEVQOR_OUTBOUND_ALLOW_HOSTS"))

	// Event streams: see server.StreamLimits for why these defaults.
	c.SSEMaxPerKey, c.SSEMaxStreams, c.SSEMaxDuration = 10, 1000, 15*time.Minute
	for _, n := range []struct {
		name     string
		min, max int
		dst      *int
	}{{"LEVQOR_SSE_MAX_PER_KEY", 1, 10000, &c.SSEMaxPerKey}, {"LEVQOR_SSE_MAX_STREAMS", 1, 1000000, &c.SSEMaxStreams}} {
		if v := getenv(n.name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < n.min || i > n.max {
				fail(n.name, "want a whole number from %d to %d, got %q", n.min, n.max, v)
			} else {
				*n.dst = i
			}
		}
	}
	if v := getenv("LEVQOR_SSE_MAX_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 24*time.Hour {
			fail("LEVQOR_SSE_MAX_DURATION", "want a duration from 1s to 24h, got %q", v)
		} else {
			c.SSEMaxDuration = d
		}
	}

	c.BudgetDailyUSD, c.BudgetMonthlyUSD = 10, 200
	for _, b := range []struct {
		name string
		dst  *float64
	}{{"LEVQOR_BUDGET_DAILY_USD", &c.BudgetDailyUSD}, {"LEVQOR_BUDGET_MONTHLY_USD", &c.BudgetMonthlyUSD}} {
		if v := getenv(b.name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1e6 {
				fail(b.name, "want a number of US dollars from 0 to 1000000, got %q", v)
			} else {
				*b.dst = f
			}
		}
	}
	c.JobMaxCostUSD = 0.35
	if v := getenv("LEVQOR_JOB_MAX_COST_USD"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1e6 {
			fail("LEVQOR_JOB_MAX_COST_USD", "want a number of US dollars from 0 to 1000000, got %q", v)
		} else {
			c.JobMaxCostUSD = f
		}
	}

	urls := []struct {
		name, def string
		dst       *string
	}{
		{"LEVQOR_AI_BASE_URL", "https://api.openai.com/v1", &c.AIBaseURL},
		{"LEVQOR_PUBLIC_URL", "https://levqor.ai", &c.PublicURL},
		{"LEVQOR_SLACK_BASE_URL", "https://slack.com/api/", &c.SlackBaseURL},
		{"LEVQOR_NOTION_BASE_URL", "https://api.notion.com", &c.NotionBaseURL},
		{"LEVQOR_GMAIL_BASE_URL", "https://gmail.googleapis.com/", &c.GmailBaseURL},
		{"LEVQOR_GMAIL_TOKEN_URL", "https://oauth2.googleapis.com/token", &c.GmailTokenURL},
		{"LEVQOR_TELEGRAM_BASE_URL", "https://api.telegram.org", &c.TelegramBaseURL},
		{"LEVQOR_RESEND_BASE_URL", "https://api.resend.com/", &c.ResendBaseURL},
	}
	for _, u := range urls {
		v := getenv(u.name)
		if v == "" {
			v = u.def
		}
		pu, err := url.Parse(v)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.User != nil || pu.RawQuery != "" || pu.Fragment != "" {
			fail(u.name, "want an http(s) URL without credentials or query, got %q", v)
			continue
		}
		*u.dst = v
	}
	c.AIModel = getenv("LEVQOR_AI_MODEL")
	if c.AIModel == "" {
		c.AIModel = "gpt-4o-mini"
	}
	c.AIAPIKey = getenv("LEVQOR_AI_API_KEY")
	c.AIPricesFile = getenv("LEVQOR_AI_PRICES")
	c.SecretKey = getenv("LEVQOR_SECRET_KEY")
	c.HashSecret = getenv("LEVQOR_HASH_SECRET")
	if c.HashSecret != "" && len(c.HashSecret) < 16 {
		fail("LEVQOR_HASH_SECRET", "want at least 16 characters")
	}
	c.DashboardToken = getenv("LEVQOR_DASHBOARD_TOKEN")
	if c.DashboardToken != "" && len(c.DashboardToken) < 16 {
		fail("LEVQOR_DASHBOARD_TOKEN", "want at least 16 characters")
	}
	c.EmailDomain = getenv("LEVQOR_EMAIL_DOMAIN")
	if c.EmailDomain == "" {
		c.EmailDomain = "levqor.ai"
	}
	if strings.ContainsAny(c.EmailDomain, "@ <>\r\n,;\"") {
		fail("LEVQOR_EMAIL_DOMAIN", "want a bare domain such as levqor.ai, got %q", c.EmailDomain)
	}
	c.EmailSenders = splitList(getenv("LEVQOR_EMAIL_SENDERS"))
	if len(c.EmailSenders) == 0 {
		for _, local := range []string{"support", "billing", "no-reply", "security"} {
			c.EmailSenders = append(c.EmailSenders, local+"@"+c.EmailDomain)
		}
	}
	c.SlackToken = getenv("LEVQOR_SLACK_TOKEN")
	c.NotionToken = getenv("LEVQOR_NOTION_TOKEN")
	c.TelegramToken = getenv("LEVQOR_TELEGRAM_TOKEN")
	c.ResendAPIKey = getenv("LEVQOR_RESEND_API_KEY")
	c.GmailClientID = getenv("LEVQOR_GMAIL_CLIENT_ID")
	c.GmailClientSecret = getenv("LEVQOR_GMAIL_CLIENT_SECRET")
	c.GmailRefreshToken = getenv("LEVQOR_GMAIL_REFRESH_TOKEN")
	switch v := getenv("LEVQOR_SHARED_CREDENTIALS"); v {
	case "", "false":
	case "true":
		c.SharedCredentials = true
	default:
		fail("LEVQOR_SHARED_CREDENTIALS", "want true or false, got %q", v)
	}

	origins := getenv("LEVQOR_CORS_ORIGINS")
	if origins == "" {
		origins = DefaultCORSOrigins
	}
	for _, o := range splitList(origins) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			fail("LEVQOR_CORS_ORIGINS", "want origins such as https://app.levqor.ai, got %q", o)
			continue
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
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
