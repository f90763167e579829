package ai_test

import (
	"testing"

	"github.com/levqor/levqor/connectors/ai/aitest"
)

// fakeReply scripts one response of the fake Chat Completions API.
type fakeReply = aitest.Reply

// chatRequest is the part of a Chat Completions request body the tests look at.
type chatRequest = aitest.Request

// fakeProvider is aitest's fake API answering with scripted replies in order (the
// last one repeats), closed when the test ends.
type fakeProvider struct {
	t testing.TB
	*aitest.Server
}

func newFakeProvider(t testing.TB, apiKey string, replies ...fakeReply) *fakeProvider {
	s := aitest.New(apiKey, aitest.Script(replies...))
	t.Cleanup(s.Close)
	return &fakeProvider{t: t, Server: s}
}

func (f *fakeProvider) baseURL() string { return f.URL }

func (f *fakeProvider) calls() int { return f.Calls() }

func (f *fakeProvider) request(i int) chatRequest {
	req, ok := f.Request(i)
	if !ok {
		f.t.Fatalf("request %d was never made (%d made)", i, f.Calls())
	}
	return req
}
