package main

import (
	"strings"
	"testing"

	"github.com/levqor/levqor/resendapi/resendtest"
)

const testResendKey = "re_cli_test_5e4d3c2b1a09"

// emailEnv is a clean environment pointing the notifier at fake.
func emailEnv(t *testing.T, fake *resendtest.Server, vars ...string) []string {
	return cleanEnv(append([]string{
		"LEVQOR_DATA_DIR=" + t.TempDir(),
		"LEVQOR_RESEND_BASE_URL=" + fake.URL,
		"LEVQOR_EMAIL_DOMAIN=levqor.example",
		"LEVQOR_PUBLIC_URL=https://levqor.example",
	}, vars...)...)
}

func TestEmailTestSends(t *testing.T) {
	fake := resendtest.New(t, testResendKey)
	stdout, stderr, code := runLevqor(t, t.TempDir(), emailEnv(t, fake, "LEVQOR_RESEND_API_KEY="+testResendKey),
		"email", "test", "--to", "ops@example.com", "--template", "job_failed")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("the fake sent %d emails, want 1", len(sent))
	}
	got := sent[0]
	if !strings.Contains(stdout, "id: "+got.ID+"\n") {
		t.Errorf("stdout %q lacks Resend's id %s", stdout, got.ID)
	}
	if got.From != "Levqor <no-reply@levqor.example>" || len(got.To) != 1 || got.To[0] != "ops@example.com" ||
		!strings.HasPrefix(got.Subject, "Job ") || !strings.Contains(got.HTML, "https://levqor.example/docs") {
		t.Errorf("sent %+v", got)
	}
	if strings.Contains(stdout+stderr, testResendKey) {
		t.Error("the output holds the API key")
	}
}

func TestEmailTestDefaultsToWelcome(t *testing.T) {
	fake := resendtest.New(t, testResendKey)
	stdout, stderr, code := runLevqor(t, t.TempDir(), emailEnv(t, fake, "LEVQOR_RESEND_API_KEY="+testResendKey),
		"email", "test", "--to", "ops@example.com")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if sent := fake.Sent(); len(sent) != 1 || sent[0].Subject != "Welcome to Levqor" || sent[0].From != "Levqor Support <support@levqor.example>" {
		t.Errorf("sent %+v", sent)
	}
}

func TestEmailTestFails(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		script []resendtest.Reply
		args   []string
		stderr []string
	}{
		{"no API key", "", nil, []string{"--to", "ops@example.com"}, []string{"LEVQOR_RESEND_API_KEY is not set"}},
		{"wrong API key", "re_wrong_0000000000", nil, []string{"--to", "ops@example.com"}, []string{"403 invalid_api_key"}},
		{"refused by Resend", testResendKey, []resendtest.Reply{{Status: 422, Name: "validation_error", Message: "Invalid `to` field."}},
			[]string{"--to", "ops@example.com"}, []string{"422 validation_error: Invalid `to` field."}},
		{"Resend down", testResendKey, []resendtest.Reply{{Status: 503, Raw: "down"}},
			[]string{"--to", "ops@example.com"}, []string{"resend: 503"}},
		{"bad recipient", testResendKey, nil, []string{"--to", "not-an-address"}, []string{"recipient is not one valid email address"}},
		{"no --to", testResendKey, nil, nil, []string{"email test needs --to", "usage:"}},
		{"unknown template", testResendKey, nil, []string{"--to", "ops@example.com", "--template", "invoice"},
			[]string{`unknown template "invoice"`, "budget_threshold"}},
		{"stray argument", testResendKey, nil, []string{"--to", "ops@example.com", "extra"}, []string{"takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := resendtest.New(t, testResendKey)
			fake.Script(tt.script...)
			var vars []string
			if tt.key != "" {
				vars = append(vars, "LEVQOR_RESEND_API_KEY="+tt.key)
			}
			stdout, stderr, code := runLevqor(t, t.TempDir(), emailEnv(t, fake, vars...), append([]string{"email", "test"}, tt.args...)...)
			if code == 0 {
				t.Fatalf("exit 0\nstdout:\n%s", stdout)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if tt.key != "" && strings.Contains(stdout+stderr, tt.key) {
				t.Error("the output holds the API key")
			}
			if len(fake.Sent()) != 0 {
				t.Error("an email was sent")
			}
		})
	}
}

func TestEmailNeedsSubcommand(t *testing.T) {
	_, stderr, code := runLevqor(t, t.TempDir(), cleanEnv(), "email")
	if code != 2 || !strings.Contains(stderr, "email needs the subcommand test") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}
