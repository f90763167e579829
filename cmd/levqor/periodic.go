package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/retention"
)

// startPeriodic starts serve's periodic work beside the server (the daily backup,
// retention); the returned stop ends it and waits for it, before the store closes.
func startPeriodic(ctx context.Context, cfg config.Config, st retention.Store, log *slog.Logger, onBackup func(backup.Result, error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if cfg.JobRetention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			retention.Run(ctx, retention.Options{Store: st, Keep: cfg.JobRetention, Logger: log})
		}()
	}
	if cfg.BackupSchedule != "" {
		switch cfg.Engine {
		case config.SQLite:
			grace := cfg.BackupGrace
			if grace == 0 {
				grace = -1 // backup.Options: negative is "no grace", 0 the default
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Run verifies the newest backup first (O(database), hence off the start-up
				// path), then backs up at every slot and applies retention.
				if err := backup.Run(ctx, backup.Options{
					DBPath: cfg.SQLitePath, Dir: filepath.Join(cfg.DataDir, "backups"),
					Keep: cfg.BackupKeep, MaxAge: cfg.BackupMaxAge, Schedule: cfg.BackupSchedule, Grace: grace,
					Logger: log, OnResult: onBackup,
				}); err != nil {
					log.Error("daily backup", "error", err.Error())
				}
			}()
		case config.Postgres:
			// TODO(#15): run the daily backup (backup.Postgres through pg_dump) once per
			// cluster: backup.Options.Claim = func(ctx, slot) { return st.ClaimSlot(ctx,
			// "backup", slot, instanceID) } once the store has ClaimSlot(ctx, key string,
			// slot time.Time, by string) (bool, error); until then every instance would run
			// it, so none does.
			log.Info("daily backup not scheduled on PostgreSQL (use pg_dump -Fc)")
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
