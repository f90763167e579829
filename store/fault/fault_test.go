package fault_test

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/store/fault"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		name string
		err  error
		want string // "" when the error is not a fault
	}{
		{"connection refused", fmt.Errorf("claim: %w", refused), levqor.EUnavailable},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), levqor.EUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, levqor.EUnavailable},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, levqor.EUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, levqor.EUnavailable},
		{"postgres disk full", fmt.Errorf("insert: %w", &pgconn.PgError{Code: "53100"}), levqor.EStorageFull},
		{"ENOSPC", fmt.Errorf("write wal: %w", syscall.ENOSPC), levqor.EStorageFull},
		{"unique violation", &pgconn.PgError{Code: "23505"}, ""},
		{"a bug", errors.New("nil map"), ""},
	} {
		got := levqor.ErrorCode(fault.Classify(c.err))
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if f := fault.Classify(c.err); f != nil && !errors.Is(f, c.err) {
			t.Errorf("%s: the cause is not wrapped", c.name)
		}
	}
}
