package levqor

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorCodeAndMessage(t *testing.T) {
	wrapped := fmt.Errorf("get user: %w", Errorf(ENotFound, "user %q not found", "u1"))
	tests := []struct {
		name    string
		err     error
		code    string
		message string
	}{
		{"nil", nil, "", "Internal error."},
		{"plain error hides its text", errors.New("pq: connection refused at 10.0.0.1"), EInternal, "Internal error."},
		{"application error", Errorf(EConflict, "already done"), EConflict, "already done"},
		{"wrapped application error", wrapped, ENotFound, `user "u1" not found`},
		{"internal application error hides its text", &Error{Code: EInternal, Message: "secret detail"}, EInternal, "Internal error."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode = %q, want %q", got, tt.code)
			}
			if tt.err == nil {
				return
			}
			if got := ErrorMessage(tt.err); got != tt.message {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.message)
			}
		})
	}
}
