package email_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/levqor/levqor/connectors"
	"github.com/levqor/levqor/connectors/email"
)

// BenchmarkOverhead compares a raw POST /emails to the local fake with a registry.Run of
// email.send that makes the same call; the difference is Levqor's overhead (schema
// validation, input checks, credentials lookup, resend-go, response reading). Each
// iteration uses a fresh idempotency key so that both take the fake's sending path.
func BenchmarkOverhead(b *testing.B) {
	bb := setup(b)
	body, err := json.Marshal(map[string]any{
		"from": "no-reply@levqor.example", "to": []string{"a@example.com"},
		"subject": "Benchmark", "text": "Hello from the benchmark.",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			req, err := http.NewRequest(http.MethodPost, bb.fake.URL+"emails", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "bench/raw/"+strconv.Itoa(i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var out struct {
				ID string `json:"id"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || out.ID == "" {
				b.Fatalf("status %d, id %q, err %v", resp.StatusCode, out.ID, err)
			}
		}
	})
	input := json.RawMessage(`{"to": "a@example.com", "subject": "Benchmark", "text": "Hello from the benchmark."}`)
	b.Run("registry", func(b *testing.B) {
		step := bb.step
		for i := 0; b.Loop(); i++ {
			step.StepID = "bench-" + strconv.Itoa(i)
			if _, err := bb.reg.Run(connectors.WithStep(context.Background(), step), email.Name, "send", input); err != nil {
				b.Fatal(err)
			}
		}
	})
}
