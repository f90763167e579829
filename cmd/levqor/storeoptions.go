package main

import (
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/store"
)

// storeOptions is what store.Open needs of the configuration.
func storeOptions(cfg config.Config) store.Options {
	return store.Options{Engine: string(cfg.Engine), SQLitePath: cfg.SQLitePath, PostgresURL: cfg.DatabaseURL}
}
