package config_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/config"
)

// vars are every variable Load reads.
var vars = []string{
	"PORT", "LEVQOR_ADDR", "LEVQOR_DATA_DIR", "LEVQOR_DATABASE_URL",
	"LEVQOR_LOG_LEVEL", "LEVQOR_MAX_BODY_BYTES", "LEVQOR_SHUTDOWN_TIMEOUT",
}

func getenv(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

// core is the part of Config these tests cover: server, storage and logging.
type core struct {
	Addr, DataDir, DatabaseURL string
	Engine                     config.Engine
	SQLitePath                 string
	LogLevel                   slog.Level
	MaxBodyBytes               int64
	ShutdownTimeout            time.Duration
}

func coreOf(c config.Config) core {
	return core{
		Addr: c.Addr, DataDir: c.DataDir, DatabaseURL: c.DatabaseURL, Engine: c.Engine, SQLitePath: c.SQLitePath,
		LogLevel: c.LogLevel, MaxBodyBytes: c.MaxBodyBytes, ShutdownTimeout: c.ShutdownTimeout,
	}
}

func TestLoad(t *testing.T) {
	defaults := core{
		Addr:            ":8080",
		DataDir:         "./data",
		Engine:          config.SQLite,
		SQLitePath:      "data/levqor.db",
		LogLevel:        slog.LevelInfo,
		MaxBodyBytes:    524288,
		ShutdownTimeout: 15 * time.Second,
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want func(c *core) // applied to a copy of defaults
	}{
		{"Defaults", nil, func(c *core) {}},
		{"PORT", map[string]string{"PORT": "9090"}, func(c *core) { c.Addr = ":9090" }},
		{"Addr", map[string]string{"LEVQOR_ADDR": "127.0.0.1:7000"}, func(c *core) { c.Addr = "127.0.0.1:7000" }},
		{"AddrIPv6", map[string]string{"LEVQOR_ADDR": "[::1]:8443"}, func(c *core) { c.Addr = "[::1]:8443" }},
		{"AddrWinsOverPORT", map[string]string{"PORT": "9090", "LEVQOR_ADDR": "127.0.0.1:7000"},
			func(c *core) { c.Addr = "127.0.0.1:7000" }},
		{"DataDir", map[string]string{"LEVQOR_DATA_DIR": "/var/lib/levqor"}, func(c *core) {
			c.DataDir, c.SQLitePath = "/var/lib/levqor", "/var/lib/levqor/levqor.db"
		}},
		{"Postgres", map[string]string{"LEVQOR_DATABASE_URL": "postgres://levqor:pw@db:5432/levqor?sslmode=require"},
			func(c *core) {
				c.DatabaseURL = "postgres://levqor:pw@db:5432/levqor?sslmode=require"
				c.Engine, c.SQLitePath = config.Postgres, ""
			}},
		{"PostgresqlScheme", map[string]string{"LEVQOR_DATABASE_URL": "postgresql://db/levqor"}, func(c *core) {
			c.DatabaseURL, c.Engine, c.SQLitePath = "postgresql://db/levqor", config.Postgres, ""
		}},
		{"SQLiteURL", map[string]string{"LEVQOR_DATABASE_URL": "sqlite:///srv/levqor/main.db"}, func(c *core) {
			c.DatabaseURL, c.SQLitePath = "sqlite:///srv/levqor/main.db", "/srv/levqor/main.db"
		}},
		{"SQLitePlainPath", map[string]string{"LEVQOR_DATABASE_URL": "other/levqor.db"}, func(c *core) {
			c.DatabaseURL, c.SQLitePath = "other/levqor.db", "other/levqor.db"
		}},
		{"SQLiteFileURI", map[string]string{"LEVQOR_DATABASE_URL": "file:other.db"}, func(c *core) {
			c.DatabaseURL, c.SQLitePath = "file:other.db", "other.db"
		}},
		{"SQLitePathBesideDataDir", map[string]string{"LEVQOR_DATA_DIR": "/data", "LEVQOR_DATABASE_URL": "/fast/levqor.db"},
			func(c *core) {
				c.DataDir, c.DatabaseURL, c.SQLitePath = "/data", "/fast/levqor.db", "/fast/levqor.db"
			}},
		{"LogLevelDebug", map[string]string{"LEVQOR_LOG_LEVEL": "debug"}, func(c *core) { c.LogLevel = slog.LevelDebug }},
		{"LogLevelWarn", map[string]string{"LEVQOR_LOG_LEVEL": "warn"}, func(c *core) { c.LogLevel = slog.LevelWarn }},
		{"LogLevelError", map[string]string{"LEVQOR_LOG_LEVEL": "error"}, func(c *core) { c.LogLevel = slog.LevelError }},
		{"MaxBodyBytesMin", map[string]string{"LEVQOR_MAX_BODY_BYTES": "1024"}, func(c *core) { c.MaxBodyBytes = 1024 }},
		{"MaxBodyBytesMax", map[string]string{"LEVQOR_MAX_BODY_BYTES": "67108864"}, func(c *core) { c.MaxBodyBytes = 67108864 }},
		{"ShutdownTimeout", map[string]string{"LEVQOR_SHUTDOWN_TIMEOUT": "90s"}, func(c *core) { c.ShutdownTimeout = 90 * time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := defaults
			tc.want(&want)
			got, err := config.Load(getenv(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := coreOf(got); got != want {
				t.Errorf("Load =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		names []string // the variables the error must name, and no others
	}{
		{"AddrWithoutPort", map[string]string{"LEVQOR_ADDR": "nope"}, []string{"LEVQOR_ADDR"}},
		{"AddrPortOutOfRange", map[string]string{"LEVQOR_ADDR": ":70000"}, []string{"LEVQOR_ADDR"}},
		{"AddrPortName", map[string]string{"LEVQOR_ADDR": ":http"}, []string{"LEVQOR_ADDR"}},
		{"PORTNotANumber", map[string]string{"PORT": "x"}, []string{"PORT"}},
		{"PORTOutOfRange", map[string]string{"PORT": "70000"}, []string{"PORT"}},
		{"LogLevel", map[string]string{"LEVQOR_LOG_LEVEL": "loud"}, []string{"LEVQOR_LOG_LEVEL"}},
		{"MaxBodyBytesNegative", map[string]string{"LEVQOR_MAX_BODY_BYTES": "-1"}, []string{"LEVQOR_MAX_BODY_BYTES"}},
		{"MaxBodyBytesNotANumber", map[string]string{"LEVQOR_MAX_BODY_BYTES": "abc"}, []string{"LEVQOR_MAX_BODY_BYTES"}},
		{"MaxBodyBytesTooSmall", map[string]string{"LEVQOR_MAX_BODY_BYTES": "1"}, []string{"LEVQOR_MAX_BODY_BYTES"}},
		{"MaxBodyBytesTooLarge", map[string]string{"LEVQOR_MAX_BODY_BYTES": "67108865"}, []string{"LEVQOR_MAX_BODY_BYTES"}},
		{"ShutdownTimeout", map[string]string{"LEVQOR_SHUTDOWN_TIMEOUT": "forever"}, []string{"LEVQOR_SHUTDOWN_TIMEOUT"}},
		{"ShutdownTimeoutZero", map[string]string{"LEVQOR_SHUTDOWN_TIMEOUT": "0s"}, []string{"LEVQOR_SHUTDOWN_TIMEOUT"}},
		{"ShutdownTimeoutTooLong", map[string]string{"LEVQOR_SHUTDOWN_TIMEOUT": "11m"}, []string{"LEVQOR_SHUTDOWN_TIMEOUT"}},
		{"DatabaseURLScheme", map[string]string{"LEVQOR_DATABASE_URL": "mysql://x"}, []string{"LEVQOR_DATABASE_URL"}},
		{"SharedCredentials", map[string]string{"LEVQOR_SHARED_CREDENTIALS": "yes"}, []string{"LEVQOR_SHARED_CREDENTIALS"}},
		{"DatabaseURLEmptySQLitePath", map[string]string{"LEVQOR_DATABASE_URL": "sqlite://"}, []string{"LEVQOR_DATABASE_URL"}},
		{"BackupScheduleNotCron", map[string]string{"LEVQOR_BACKUP_SCHEDULE": "daily"}, []string{"LEVQOR_BACKUP_SCHEDULE"}},
		{"BackupScheduleEvery", map[string]string{"LEVQOR_BACKUP_SCHEDULE": "@every 1h"}, []string{"LEVQOR_BACKUP_SCHEDULE"}},
		{"BackupScheduleEveryInZone", map[string]string{"LEVQOR_BACKUP_SCHEDULE": "CRON_TZ=Europe/Paris @every 1h"}, []string{"LEVQOR_BACKUP_SCHEDULE"}},
		{"DatabaseURLSQLiteOptions", map[string]string{"LEVQOR_DATABASE_URL": "data/levqor.db?mode=ro"}, []string{"LEVQOR_DATABASE_URL"}},
		{"All", map[string]string{
			"PORT":                    "x",
			"LEVQOR_ADDR":             "nope",
			"LEVQOR_LOG_LEVEL":        "loud",
			"LEVQOR_MAX_BODY_BYTES":   "abc",
			"LEVQOR_SHUTDOWN_TIMEOUT": "forever",
			"LEVQOR_DATABASE_URL":     "mysql://x",
		}, []string{"PORT", "LEVQOR_ADDR", "LEVQOR_LOG_LEVEL", "LEVQOR_MAX_BODY_BYTES", "LEVQOR_SHUTDOWN_TIMEOUT", "LEVQOR_DATABASE_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.Load(getenv(tc.env))
			if err == nil {
				t.Fatalf("Load: no error, config %+v", got)
			}
			for _, name := range vars {
				named := strings.Contains(err.Error(), name)
				wanted := false
				for _, n := range tc.names {
					wanted = wanted || n == name
				}
				if named != wanted {
					t.Errorf("error names %s: %v, want %v; error:\n%v", name, named, wanted, err)
				}
			}
		})
	}
}

// A database URL's password must not reach the start-up error (and so the logs).
func TestLoadErrorHidesDatabasePassword(t *testing.T) {
	const password = "Sup3rS3cretPw"
	for _, url := range []string{
		"mysql://levqor:" + password + "@db/levqor",
		"sqlite://levqor:" + password + "@db/levqor?x=1",
	} {
		_, err := config.Load(getenv(map[string]string{"LEVQOR_DATABASE_URL": url}))
		if err == nil {
			t.Fatalf("Load(LEVQOR_DATABASE_URL=%s): no error", url)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Load error shows the database password: %v", err)
		}
	}
}
