package gmail_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/levqor/levqor/connectors/gmail"
)

// BenchmarkOverhead compares list_labels through the registry, with a warm token cache,
// with the same request made by a plain http.Client, both against the local fake: the
// difference is what the connector adds (schema validation, credentials, the SDK,
// decoding and output).
func BenchmarkOverhead(b *testing.B) {
	client := &http.Client{}
	bb := setup(b, func(c *gmail.Config) { c.HTTPClient = client })
	if _, err := bb.reg.Run(bb.ctx, gmail.Name, "list_labels", json.RawMessage(`{}`)); err != nil {
		b.Fatal(err) // warms the token cache
	}
	token := bb.fake.issuedTokens()[0]

	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequest(http.MethodGet, bb.fake.baseURL()+"gmail/v1/users/me/labels?alt=json&prettyPrint=false", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
				b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, len(body), err)
			}
		}
	})
	b.Run("connector", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bb.reg.Run(bb.ctx, gmail.Name, "list_labels", json.RawMessage(`{}`)); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := bb.fake.refreshes(); n != 1 {
		b.Fatalf("%d token refreshes; the cache should have kept one token", n)
	}
}
