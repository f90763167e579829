package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrInUse is returned by Restore while a server holds the database's lock file.
var ErrInUse = errors.New("the database is in use by a running Levqor server: stop it first")

// Restored describes a restore.
type Restored struct {
	Info  Info   // the backup put in place
	Aside string // where the database it replaced was kept ("" when there was none)
}

// Restore replaces the SQLite database at dbPath with the backup file. It takes the
// lock file a server takes (dbPath + ".lock", as store/sqlite.Open does) and holds it
// throughout, so it refuses while a server runs and no server can start half-way. The
// backup is verified first; the current database is kept beside it as
// dbPath.before-restore-<UTC time>, with its -wal, so nothing committed is lost; the
// copy is synced and renamed over dbPath in one step, and no -wal or -shm of the old
// database is left beside the new one (SQLite would replay that log into the wrong file).
func Restore(ctx context.Context, dbPath, file string, now time.Time) (Restored, error) {
	lock, err := os.OpenFile(dbPath+".lock", os.O_CREATE|os.O_RDWR, FileMode)
	if err != nil {
		return Restored{}, fmt.Errorf("restore: open lock file: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return Restored{}, ErrInUse
		}
		return Restored{}, fmt.Errorf("restore: lock: %w", err)
	}

	info, err := Verify(ctx, file)
	if err != nil {
		return Restored{}, fmt.Errorf("restore: %s: %w", file, err)
	}
	dir := filepath.Dir(dbPath)
	tmpPath, err := copyInto(dir, file)
	if err != nil {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmpPath) // gone after the rename; left behind only on failure

	res := Restored{Info: info}
	if _, err := os.Stat(dbPath); err == nil {
		// Fold the old database's log into it first, so the file kept aside is whole
		// on its own; a database too damaged to checkpoint keeps its -wal beside it.
		checkpoint(ctx, dbPath)
		res.Aside = dbPath + ".before-restore-" + now.UTC().Format(timeLayout)
		if err := os.Link(dbPath, res.Aside); err != nil {
			return Restored{}, fmt.Errorf("restore: keep the current database aside: %w", err)
		}
		for _, suffix := range []string{"-wal", "-journal"} {
			if err := os.Rename(dbPath+suffix, res.Aside+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return Restored{}, fmt.Errorf("restore: keep the current database's %s aside: %w", suffix, err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Restored{}, fmt.Errorf("restore: %w", err)
	}
	// The shared-memory index is rebuilt from the log; a stale one must not survive.
	if err := os.Remove(dbPath + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Restored{}, fmt.Errorf("restore: remove stale -shm: %w", err)
	}
	if err := os.Rename(tmpPath, dbPath); err != nil {
		return Restored{}, fmt.Errorf("restore: swap in: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return Restored{}, fmt.Errorf("restore: sync %s: %w", dir, err)
	}
	return res, nil
}

// copyInto copies file into a new temporary file in dir (FileMode), synced, and
// returns its path.
func copyInto(dir, file string) (string, error) {
	src, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return "", err
	}
	dst, err := os.CreateTemp(dir, ".restore-*")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			dst.Close()
			os.Remove(dst.Name())
		}
	}()
	if err := dst.Chmod(FileMode); err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return "", fmt.Errorf("copy backup: %w", err)
	}
	if err := errors.Join(dst.Sync(), dst.Close()); err != nil {
		return "", fmt.Errorf("sync copy: %w", err)
	}
	ok = true
	return dst.Name(), nil
}

// checkpoint folds the database's WAL into its main file, best effort: Restore holds
// the lock, so no server writes meanwhile.
func checkpoint(ctx context.Context, dbPath string) {
	db, err := sql.Open("sqlite", dsn(dbPath, url.Values{"mode": {"rw"}}))
	if err != nil {
		return
	}
	defer db.Close()
	_, _ = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
}
