package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/jobs"
	"github.com/levqor/levqor/metrics"
)

func exposition(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, b)
	}
	return string(b)
}

// TestLabelsAreBounded: workflow names past MaxWorkflowLabels count as "other",
// unknown methods as "other", unmatched routes as "unmatched"; spend, webhooks and
// backups land in their series; a failing queue-depth read fails only its series.
func TestLabelsAreBounded(t *testing.T) {
	m := metrics.New(metrics.Options{QueueDepth: func(context.Context) (jobs.QueueStats, error) {
		return jobs.QueueStats{}, errors.New("database down")
	}})
	for i := range metrics.MaxWorkflowLabels + 50 {
		m.JobEnqueued(fmt.Sprintf("wf-%d", i))
	}
	m.AttemptEnded("wf-0", jobs.StatusSucceeded, true, time.Second)
	m.AttemptEnded("wf-999", jobs.StatusFailed, true, time.Second)
	m.Request("BREW", "", 404, "not_found", time.Millisecond)
	m.AISpend("gpt-4o-mini", budget.USDToNanos(0.25))
	m.WebhookDelivered("failed")
	m.BackupResult(backup.Result{}, errors.New("disk full"))
	out := exposition(t, m)
	for _, want := range []string{
		`levqor_jobs_enqueued_total{workflow="other"} 50`,
		fmt.Sprintf(`levqor_jobs_enqueued_total{workflow="wf-%d"} 1`, metrics.MaxWorkflowLabels-1),
		`levqor_jobs_finished_total{status="succeeded",workflow="wf-0"} 1`,
		`levqor_jobs_finished_total{status="failed",workflow="other"} 1`,
		`http_request_duration_seconds_count{code="404",method="other",route="unmatched"} 1`,
		`levqor_ai_spend_usd_total{model="gpt-4o-mini"} 0.25`,
		`levqor_webhook_deliveries_total{outcome="failed"} 1`,
		`levqor_backups_total{result="error"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if strings.Contains(out, fmt.Sprintf(`workflow="wf-%d"`, metrics.MaxWorkflowLabels)) {
		t.Errorf("a workflow past the bound got its own label")
	}
}
