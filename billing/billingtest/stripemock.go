// Package billingtest starts stripe-mock, Stripe's official API mock, for tests of
// billing and of the routes built on it, and signs webhook payloads as Stripe does.
package billingtest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v86/webhook"
)

// StripeMockModule is the stripe-mock version installed when none is found; .ci/run
// installs the same one.
const StripeMockModule = "github.com/stripe/stripe-mock@v0.203.0"

// Keys the tests use: stripe-mock accepts any test key, and the webhook secret is ours.
const (
	SecretKey     = "sk_test_levqor000000000000000000"
	WebhookSecret = "whsec_levqortest0000000000000000"
)

var installOnce sync.Once

// binary finds stripe-mock on PATH, in $GOBIN or in $GOPATH/bin, installing it with
// go install when it is nowhere.
func binary(t testing.TB) string {
	find := func() string {
		if p, err := exec.LookPath("stripe-mock"); err == nil {
			return p
		}
		dirs := []string{os.Getenv("GOBIN")}
		if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			dirs = append(dirs, lines[0])
			if len(lines) > 1 {
				for _, gp := range filepath.SplitList(lines[1]) {
					dirs = append(dirs, filepath.Join(gp, "bin"))
				}
			}
		}
		for _, d := range dirs {
			if d == "" {
				continue
			}
			if p := filepath.Join(d, "stripe-mock"); fileExists(p) {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	var installErr string
	installOnce.Do(func() {
		cmd := exec.Command("go", "install", StripeMockModule)
		cmd.Dir = os.TempDir() // outside the module: its go.mod must not change
		if out, err := cmd.CombinedOutput(); err != nil {
			installErr = err.Error() + ": " + string(out)
		}
	})
	if p := find(); p != "" {
		return p
	}
	msg := "!!! stripe-mock is not installed and `go install " + StripeMockModule + "` failed (" + installErr +
		"): the Stripe half of this test CANNOT RUN. Install it (.ci/run does) and run again."
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

var listening = regexp.MustCompile(`Listening for HTTP at address: .*:(\d+)`)

// StripeMock starts stripe-mock on a free port for the test and returns its base URL.
func StripeMock(t testing.TB) string {
	t.Helper()
	bin := binary(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-http-port", "0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case p := <-port:
		return "http://127.0.0.1:" + p
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not start listening within 30s")
	}
	return ""
}

// Sign returns the Stripe-Signature header of payload, as Stripe would send it at ts
// (time.Now when zero) with secret.
func Sign(payload []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts}).Header
}

// FixturePrice is the price of every subscription stripe-mock returns (it answers
// from fixtures, whatever was created): tests map a plan to it so that re-reading a
// subscription from "Stripe" lands on a known plan.
func FixturePrice(t testing.TB, baseURL string) (price, customer string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/v1/subscriptions/sub_fixture", nil)
	req.SetBasicAuth(SecretKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("read stripe-mock's fixture subscription: %v", err)
	}
	defer resp.Body.Close()
	var sub struct {
		Customer string `json:"customer"`
		Items    struct {
			Data []struct {
				Price struct{ ID string } `json:"price"`
			} `json:"data"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sub); err != nil || len(sub.Items.Data) == 0 {
		t.Fatalf("stripe-mock's fixture subscription has no price: %v", err)
	}
	return sub.Items.Data[0].Price.ID, sub.Customer
}

// Event is a Stripe event's JSON: an old API version on purpose, since Levqor must
// accept events whatever version the endpoint was created with.
func Event(id, typ string, created time.Time, object map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": created.Unix(), "livemode": false, "data": map[string]any{"object": object}})
	if err != nil {
		panic(err)
	}
	return b
}
