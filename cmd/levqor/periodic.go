package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/retention"
	"github.com/levqor/levqor/triggers"
)

// periodicStore is what serve's periodic work needs of the store.
type periodicStore interface {
	retention.Store
	triggers.SlotClaimer
}

// startPeriodic starts serve's periodic work beside the server (the daily backup,
// retention); the returned stop ends it and waits for it, before the store closes.
func startPeriodic(ctx context.Context, cfg config.Config, st periodicStore, log *slog.Logger, onBackup func(backup.Result, error)) (stop func()) {
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
		grace := cfg.BackupGrace
		if grace == 0 {
			grace = -1 // backup.Options: negative is "no grace", 0 the default
		}
		switch cfg.Engine {
		case config.SQLite:
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
			// Every instance schedules the slot; the one that claims it (once per cluster)
			// runs pg_dump -Fc into its own data dir's backups/.
			if _, err := exec.LookPath("pg_dump"); err != nil {
				log.Info("daily backup not scheduled on PostgreSQL: pg_dump is not installed (use pg_dump -Fc)")
				break
			}
			host, _ := os.Hostname()
			by := fmt.Sprintf("%s/%d", host, os.Getpid())
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := backup.Run(ctx, backup.Options{
					Dir: filepath.Join(cfg.DataDir, "backups"), Keep: cfg.BackupKeep, MaxAge: cfg.BackupMaxAge,
					Schedule: cfg.BackupSchedule, Grace: grace, Logger: log, OnResult: onBackup,
					Claim: func(ctx context.Context, slot time.Time) (bool, error) {
						return st.ClaimSlot(ctx, "backup", slot, by)
					},
					Take: func(ctx context.Context, dir string, now time.Time) (backup.Result, error) {
						return backup.Postgres(ctx, cfg.DatabaseURL, dir, now)
					},
				}); err != nil {
					log.Error("daily backup", "error", err.Error())
				}
			}()
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
