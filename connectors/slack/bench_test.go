package slack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/levqor/levqor/connectors/connectortest"
	"github.com/levqor/levqor/connectors/slack"
)

// BenchmarkOverhead measures what the connector adds to a chat.postMessage round trip to
// the local fake: raw is a plain net/http POST of the same form the SDK sends, connector
// is the whole step through the registry (schema validation, credentials, the SDK,
// error mapping, the output). The difference of their medians is Levqor's overhead.
func BenchmarkOverhead(b *testing.B) {
	bd := setup(b, func(c *slack.Config) {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	})
	bd.fake.quiet = true

	b.Run("raw", func(b *testing.B) {
		client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		form := url.Values{"token": {botToken}, "channel": {"C0000000001"}, "text": {"Deploy finished: api v1.4.2 is live"}}.Encode()
		endpoint := bd.fake.baseURL() + "chat.postMessage"
		for b.Loop() {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, endpoint, strings.NewReader(form))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok":true`) {
				b.Fatalf("raw POST: %d %s %v", resp.StatusCode, body, err)
			}
		}
	})
	b.Run("connector", func(b *testing.B) {
		ctx := connectortest.StepContext(owner)
		input := json.RawMessage(`{"channel":"C0000000001","text":"Deploy finished: api v1.4.2 is live"}`)
		for b.Loop() {
			if _, err := bd.reg.Run(ctx, slack.Name, "post_message", input); err != nil {
				b.Fatal(err)
			}
		}
	})
}
