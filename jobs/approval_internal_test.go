package jobs

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor"
)

// A token says what it was signed with, to the second; any change to it, a token
// signed with another key, and tokens that are not ours are refused as unknown.
func TestApprovalToken(t *testing.T) {
	a := newApprovals(ApprovalOptions{Key: []byte("0123456789abcdef0123456789abcdef")})
	want := approvalToken{JobID: "job_01HZXEXAMPLE", StepID: "review-1", Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	tok := a.sign(want)
	if len(tok) > MaxApprovalToken || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("token %q is not base64url within %d characters", tok, MaxApprovalToken)
	}
	got, err := a.parse(tok)
	if err != nil || got != want {
		t.Fatalf("parse(sign(t)) = %+v, %v; want %+v", got, err, want)
	}
	other := newApprovals(ApprovalOptions{Key: []byte("another key, another server.....")})
	if _, err := other.parse(tok); levqor.ErrorCode(err) != levqor.ENotFound {
		t.Errorf("a token of another key: %v, want not found", err)
	}
	// Every single-character change is refused.
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		c := alphabet[(strings.IndexByte(alphabet, tok[i])+1)%len(alphabet)]
		bad := tok[:i] + string(c) + tok[i+1:]
		if _, err := a.parse(bad); err == nil {
			t.Fatalf("a token changed at %d was accepted", i)
		}
	}
	// A token for another job, or with a later expiry, cannot be made without the key:
	// the body re-encoded with the old MAC fails.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[len(raw)-tokenMACLen-1] ^= 1 // the last byte of the step id
	if _, err := a.parse(base64.RawURLEncoding.EncodeToString(raw)); err == nil {
		t.Error("a token naming another step was accepted")
	}
	for _, s := range []string{"", "x", strings.Repeat("A", MaxApprovalToken+1), tok + "=", tok[:len(tok)-1]} {
		if _, err := a.parse(s); levqor.ErrorCode(err) != levqor.ENotFound {
			t.Errorf("parse(%.20q…) = %v, want not found", s, err)
		}
	}
	if f := a.formToken(tok); f == a.formToken(a.sign(approvalToken{JobID: "job_other", StepID: "review-1", Expires: want.Expires})) || len(f) < 16 {
		t.Errorf("form token %q is not bound to its token", f)
	}
}

// FuzzParseApprovalToken: the parser never panics, accepts only what the key signed
// (ids that fit the pattern), and what it accepts signs back to the same token.
func FuzzParseApprovalToken(f *testing.F) {
	a := newApprovals(ApprovalOptions{Key: []byte("fuzz key fuzz key fuzz key fuzz!")})
	f.Add(a.sign(approvalToken{JobID: "job_1", StepID: "s", Expires: time.Unix(1, 0)}))
	f.Add(a.sign(approvalToken{JobID: strings.Repeat("j", 64), StepID: strings.Repeat("s", 64), Expires: time.Unix(1<<40, 0)}))
	f.Add("")
	f.Add("AQAAAAAAAAAB")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := a.parse(s)
		if err != nil {
			if levqor.ErrorCode(err) != levqor.ENotFound {
				t.Fatalf("parse error %v is not a not-found error", err)
			}
			return
		}
		if !idPattern.MatchString(got.JobID) || !idPattern.MatchString(got.StepID) {
			t.Fatalf("parse accepted ids %q %q", got.JobID, got.StepID)
		}
		if again := a.sign(got); again != s {
			t.Fatalf("parse(%q) = %+v, which signs to %q", s, got, again)
		}
	})
}
