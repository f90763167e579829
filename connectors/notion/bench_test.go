package notion_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/levqor/levqor/connectors/notion"
)

// BenchmarkOverhead compares a search through the registry with the same request made
// by a plain http.Client, both against the local fake: the difference is what the
// connector adds (schema validation, credentials, encoding, decoding, output).
func BenchmarkOverhead(b *testing.B) {
	client := &http.Client{}
	bb := setup(b, func(c *notion.Config) { c.HTTPClient = client })
	const input = `{"query": "kale", "page_size": 10}`

	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequest(http.MethodPost, bb.fake.srv.URL+"/v1/search", strings.NewReader(input))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("Notion-Version", notion.APIVersion)
			req.Header.Set("Content-Type", "application/json")
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
			if _, err := bb.reg.Run(bb.ctx, notion.Name, "search", json.RawMessage(input)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
