// Package metrics exports Levqor's Prometheus metrics: HTTP requests by route
// template, the job engine's intake, attempts and webhooks, queue depth from the
// maintained counters, AI spending by model, rate-limit rejections, backups, and the
// Go and process collectors. It is served on a listener of its own
// (LEVQOR_METRICS_ADDR), apart from the API. Labels never hold owner or job ids, raw
// paths or other unbounded values (docs/adr/0013-operations.md).
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/levqor/levqor/backup"
	"github.com/levqor/levqor/budget"
	"github.com/levqor/levqor/jobs"
)

const (
	// MaxWorkflowLabels bounds the workflow label: the first this many distinct
	// workflow names a process sees are labels, later ones count as "other". Workflow
	// names are chosen by API clients, so an unbounded label would let them grow the
	// series (and the scrape) without limit.
	MaxWorkflowLabels = 100
	// otherWorkflow is the workflow label of names past MaxWorkflowLabels.
	otherWorkflow = "other"
	// scrapeTimeout bounds the queue-depth read a scrape makes.
	scrapeTimeout = 2 * time.Second
)

// Options are what the metrics read at scrape time.
type Options struct {
	// QueueDepth returns jobs per status (the store's maintained counters, O(1) in
	// jobs); nil: no queue-depth series.
	QueueDepth func(ctx context.Context) (jobs.QueueStats, error)
	// BackupDir is where backups are listed for their age; "": no backup-age series.
	BackupDir string
}

// Metrics holds Levqor's collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	httpDuration *prometheus.HistogramVec
	rateLimited  *prometheus.CounterVec
	enqueued     *prometheus.CounterVec
	finished     *prometheus.CounterVec
	attemptRun   *prometheus.HistogramVec
	queueWait    prometheus.Histogram
	aiSpend      *prometheus.CounterVec
	webhooks     *prometheus.CounterVec
	backups      *prometheus.CounterVec
	backupLast   prometheus.Gauge

	mu        sync.Mutex
	workflows map[string]bool
}

// knownMethods are the method label's values; anything else is "other".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// New registers every collector.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), workflows: map[string]bool{}}
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "HTTP requests by method, route template and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "code"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "levqor_rate_limit_rejections_total", Help: "Requests refused with 429 rate_limited, by route template.",
	}, []string{"route"})
	m.enqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "levqor_jobs_enqueued_total", Help: "Jobs stored by intake (idempotent repeats excluded), by workflow.",
	}, []string{"workflow"})
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "levqor_jobs_finished_total", Help: "Jobs this process ended for good, by workflow and final status.",
	}, []string{"workflow", "status"})
	m.attemptRun = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "levqor_job_attempt_duration_seconds", Help: "Job attempts from claim to stored end, by the job's status after it.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"status"})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "levqor_job_queue_wait_seconds", Help: "How long a job waited after it was due until a worker of this process claimed it.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	})
	m.aiSpend = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "levqor_ai_spend_usd_total", Help: "AI spending settled on owners' budgets, in US dollars, by model.",
	}, []string{"model"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "levqor_webhook_deliveries_total", Help: "Completion webhook deliveries by outcome (delivered, retrying, failed).",
	}, []string{"outcome"})
	m.backups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "levqor_backups_total", Help: "Scheduled backups this process took, by result (ok, error).",
	}, []string{"result"})
	m.backupLast = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "levqor_backup_last_success_timestamp_seconds", Help: "Unix time of this process's last successful scheduled backup (0: none yet).",
	})
	for _, result := range []string{"ok", "error"} {
		m.backups.WithLabelValues(result)
	}
	for _, outcome := range []string{"delivered", "retrying", "failed"} {
		m.webhooks.WithLabelValues(outcome)
	}
	m.reg.MustRegister(m.httpDuration, m.rateLimited, m.enqueued, m.finished, m.attemptRun, m.queueWait,
		m.aiSpend, m.webhooks, m.backups, m.backupLast,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.QueueDepth != nil {
		m.reg.MustRegister(queueDepth{read: o.QueueDepth})
	}
	if o.BackupDir != "" {
		m.reg.MustRegister(backupAge{dir: o.BackupDir})
	}
	return m
}

// Handler serves the registry in the Prometheus exposition formats. A failing
// queue-depth read drops only its own series (and counts in promhttp_metric_handler_errors_total).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second, ErrorHandling: promhttp.ContinueOnError})
}

// Request records one answered request (server.Options.Observed).
func (m *Metrics) Request(method, route string, status int, errCode string, d time.Duration) {
	if !knownMethods[method] {
		method = "other"
	}
	if route == "" {
		route = "unmatched" // never the raw path: it is unbounded
	}
	if status == 0 {
		status = http.StatusOK
	}
	m.httpDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
	if errCode == "rate_limited" {
		m.rateLimited.WithLabelValues(route).Inc()
	}
}

// workflow is the bounded label of a workflow name.
func (m *Metrics) workflow(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workflows[name] {
		return name
	}
	if len(m.workflows) < MaxWorkflowLabels {
		m.workflows[name] = true
		return name
	}
	return otherWorkflow
}

// JobEnqueued implements jobs.Observer.
func (m *Metrics) JobEnqueued(workflow string) {
	m.enqueued.WithLabelValues(m.workflow(workflow)).Inc()
}

// JobClaimed implements jobs.Observer.
func (m *Metrics) JobClaimed(_ string, wait time.Duration) {
	m.queueWait.Observe(wait.Seconds())
}

// AttemptEnded implements jobs.Observer.
func (m *Metrics) AttemptEnded(workflow, status string, terminal bool, run time.Duration) {
	m.attemptRun.WithLabelValues(status).Observe(run.Seconds())
	if terminal {
		m.finished.WithLabelValues(m.workflow(workflow), status).Inc()
	}
}

// WebhookDelivered implements jobs.Observer.
func (m *Metrics) WebhookDelivered(outcome string) {
	m.webhooks.WithLabelValues(outcome).Inc()
}

// AISpend records a settlement (budget.Service.OnSpend). Models are bounded by the
// price table: a model without a price is refused before any call.
func (m *Metrics) AISpend(model string, actual budget.Nanos) {
	if model == "" {
		model = "unknown"
	}
	m.aiSpend.WithLabelValues(model).Add(actual.USD())
}

// BackupResult records a scheduled backup's outcome (backup.Options.OnResult).
func (m *Metrics) BackupResult(_ backup.Result, err error) {
	if err != nil {
		m.backups.WithLabelValues("error").Inc()
		return
	}
	m.backups.WithLabelValues("ok").Inc()
	m.backupLast.SetToCurrentTime()
}

var _ jobs.Observer = (*Metrics)(nil)

// queueDepth reads jobs per status at scrape time from the store's counters.
type queueDepth struct {
	read func(ctx context.Context) (jobs.QueueStats, error)
}

var queueDepthDesc = prometheus.NewDesc("levqor_jobs_queue_depth", "Jobs per status, from the store's maintained counters (all instances).", []string{"status"}, nil)

// statuses are reported even when no job has them, so that series do not vanish.
var statuses = []string{jobs.StatusQueued, jobs.StatusScheduled, jobs.StatusRunning, jobs.StatusRetrying, jobs.StatusWaiting,
	jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}

func (queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepthDesc }

func (q queueDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := q.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.ByStatus[s]), s)
	}
}

// backupAge reports the newest backup in a directory, read at scrape time (a
// directory listing; nothing when there is no backup yet).
type backupAge struct{ dir string }

var backupAgeDesc = prometheus.NewDesc("levqor_backup_age_seconds", "Age of the newest backup in the data dir's backups/ (absent when there is none).", nil, nil)

func (backupAge) Describe(ch chan<- *prometheus.Desc) { ch <- backupAgeDesc }

func (b backupAge) Collect(ch chan<- prometheus.Metric) {
	all, err := backup.List(b.dir)
	if err != nil || len(all) == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(backupAgeDesc, prometheus.GaugeValue, time.Since(all[0].Time).Seconds())
}
