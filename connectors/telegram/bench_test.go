package telegram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/telegram"
)

// BenchmarkOverhead measures what the connector adds to a sendMessage round trip to the
// local fake: raw is a plain net/http POST of the same JSON body, connector is the whole
// step through the registry (schema validation, credentials, the call, error mapping,
// the output). The difference of their medians is Levqor's overhead.
func BenchmarkOverhead(b *testing.B) {
	bd := setup(b, func(c *telegram.Config) {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	})
	bd.fake.quiet = true

	b.Run("raw", func(b *testing.B) {
		client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		body := []byte(`{"chat_id":123456789,"text":"Deploy finished: api v1.4.2 is live"}`)
		endpoint := bd.fake.srv.URL + "/bot" + botToken + "/sendMessage"
		for b.Loop() {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, endpoint, bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"ok":true`) {
				b.Fatalf("raw POST: %d %s %v", resp.StatusCode, data, err)
			}
		}
	})
	b.Run("connector", func(b *testing.B) {
		ctx := connectortest.StepContext(owner)
		input := json.RawMessage(`{"chat_id":123456789,"text":"Deploy finished: api v1.4.2 is live"}`)
		for b.Loop() {
			if _, err := bd.reg.Run(ctx, telegram.Name, "send_message", input); err != nil {
				b.Fatal(err)
			}
		}
	})
}
