package sqlite

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Checkpoints (docs/adr/0002-sqlite.md). Left to itself SQLite checkpoints inside the
// commit that takes the WAL past 1000 pages — that commit waits while the WAL and the
// database file are synced, tens of milliseconds on a slow disk — and the first write
// after it restarts the WAL and syncs the new header, a second slow commit. Each lands on
// whatever request happened to write then (an AI step's budget reservation, say). So the
// writer connection runs with wal_autocheckpoint(0), and a goroutine watches the WAL and,
// past checkpointFrames, takes the writer for one checkpoint and one one-page write that
// restarts the WAL: one pause per cycle, at a moment no request chose. Before taking the
// writer it syncs the WAL file from its own descriptor, writers still writing, so the
// sync inside the checkpoint has little left to flush and the pause is shorter.

const (
	// checkpointFrames is the WAL length (pages) that starts a checkpoint: SQLite's
	// own default.
	checkpointFrames = 1000
	// checkpointPoll is how often the checkpointer reads the WAL's length.
	checkpointPoll = 10 * time.Millisecond
)

// writerDSN is the writer connection's DSN: DSN(path, false) without SQLite's automatic
// checkpoint, which the checkpointer replaces.
func writerDSN(path string) string {
	return DSN(path, false) + "&" + url.Values{"_pragma": {"wal_autocheckpoint(0)"}}.Encode()
}

// walFrames reads mxFrame — how many frames the WAL holds — from the header of the
// wal-index in the -shm file (https://www.sqlite.org/walformat.html, offset 16, native
// byte order). A read racing a commit may see a torn header; the result is only a hint.
func walFrames(shm *os.File) (uint32, error) {
	var b [4]byte
	if _, err := shm.ReadAt(b[:], 16); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint32(b[:]), nil
}

// checkpointer runs until db.closing is closed, checkpointing the database at path
// whenever its WAL has grown past checkpointFrames.
func (db *DB) checkpointer(path string) {
	defer close(db.checkpointDone)
	tick := time.NewTicker(checkpointPoll)
	defer tick.Stop()
	var shm *os.File
	defer func() {
		if shm != nil {
			shm.Close()
		}
	}()
	next := uint32(checkpointFrames)
	for {
		select {
		case <-db.closing:
			return
		case <-tick.C:
		}
		if shm == nil {
			var err error
			if shm, err = os.Open(path + "-shm"); err != nil {
				continue // not created yet
			}
		}
		frames, err := walFrames(shm)
		if err != nil || frames < next {
			continue
		}
		syncFile(path + "-wal")
		after, err := db.checkpoint(context.Background(), shm)
		if err != nil {
			after = frames
		}
		// A reader still on an older snapshot keeps the WAL from restarting (and a
		// failed checkpoint leaves it as it was): try again when it has grown by half
		// as much again, not at every poll.
		next = max(checkpointFrames, after+checkpointFrames/2)
	}
}

// syncFile flushes the file at path to disk, if it can. The checkpoint syncs it again
// under the writer; this only shortens that sync.
func syncFile(path string) {
	if f, err := os.Open(path); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// checkpoint copies the WAL into the database file on the writer connection, then
// writes one page so that SQLite restarts the WAL from its start (it does when every
// frame was copied and no reader needs them) and syncs the new header now rather than
// in a request's commit. It returns the WAL's length afterwards.
func (db *DB) checkpoint(ctx context.Context, shm *os.File) (uint32, error) {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	// user_version is otherwise unused (migrations are recorded in schema_migrations).
	if _, err := conn.ExecContext(ctx, "PRAGMA user_version = 0"); err != nil {
		return 0, fmt.Errorf("restart the WAL: %w", err)
	}
	return walFrames(shm)
}
