// Package migrate lists the schema migrations of each database engine, embedded in the
// binary (levqor.MigrationFiles), in the order the engines apply them.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/levqor/levqor"
)

// files is sql/ as embedded: <engine>/migrations/*.sql.
var files, _ = fs.Sub(levqor.MigrationFiles, "sql")

// Migration is one numbered schema change, applied once, in order.
type Migration struct {
	Version int    // from the file name's leading number: 0001_users.sql is 1
	Name    string // the file name
	SQL     string
}

// Migrations returns the migrations of an engine ("sqlite" or "postgres") in version order.
func Migrations(engine string) ([]Migration, error) {
	dir := engine + "/migrations"
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", engine, err)
	}
	var out []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", e.Name())
		}
		b, err := fs.ReadFile(files, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}
