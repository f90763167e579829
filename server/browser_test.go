package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	apispec "github.com/levqor/levqor/api/spec"
	"github.com/levqor/levqor/server"
	"github.com/levqor/levqor/store/sqlite"
)

// browserChromium is Debian's Chromium, which .ci/run installs.
const browserChromium = "/usr/bin/chromium"

// browserCSPRecorder runs before any script of the page. DevTools injects it, so the
// page's own policy does not apply to it, and it records what the policy blocks as
// the page itself would see it.
const browserCSPRecorder = `window.__levqorCSP = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__levqorCSP.push(e.effectiveDirective + " blocked " + (e.blockedURI || "(inline)") +
    " at " + e.sourceFile + ":" + e.lineNumber + (e.sample ? " sample " + JSON.stringify(e.sample) : ""));
});`

// browserProblems collects, from the DevTools events, everything that shows the
// page is broken.
type browserProblems struct {
	mu       sync.Mutex
	console  []string       // console.error calls, uncaught exceptions, error log entries
	csp      []string       // CSP violations and other blocked loads, as DevTools reports them
	network  []string       // failed requests and responses with status >= 400
	warnings map[string]int // logged for the reader with their counts, not failures
	requests map[network.RequestID]string
}

func (p *browserProblems) warn(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.warnings[fmt.Sprintf(format, args...)]++
}

func (p *browserProblems) add(list *[]string, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*list = append(*list, fmt.Sprintf(format, args...))
}

func (p *browserProblems) snapshot(list *[]string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), *list...)
}

// reset forgets what was recorded, so the next page is judged on its own.
func (p *browserProblems) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.console, p.csp, p.network = nil, nil, nil
	p.warnings = map[string]int{}
}

// listen handles one event on the browser's reading goroutine, so it only records.
func (p *browserProblems) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			p.add(&p.console, "console.%s: %s", ev.Type, browserArgs(ev.Args))
		case runtime.ConsoleAPICalledTypeWarning:
			p.warn("console.warn: %s", browserArgs(ev.Args))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		p.add(&p.console, "exception at %s:%d: %s", d.URL, d.LineNumber, text)
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		switch {
		// Chromium reports a blocked load or inline script/style with source
		// "security"; count it as a CSP problem whatever its level.
		case e.Source == cdplog.EntrySourceSecurity:
			p.add(&p.csp, "log[%s/%s] %s (%s)", e.Source, e.Level, e.Text, e.URL)
		case e.Level == cdplog.EntryLevelError:
			p.add(&p.console, "log[%s/%s] %s (%s)", e.Source, e.Level, e.Text, e.URL)
		case e.Level == cdplog.EntryLevelWarning:
			p.warn("log[%s/%s] %s (%s)", e.Source, e.Level, e.Text, e.URL)
		}
	case *audits.EventIssueAdded:
		p.issue(ev.Issue)
	case *network.EventRequestWillBeSent:
		p.mu.Lock()
		p.requests[ev.RequestID] = ev.Request.URL
		p.mu.Unlock()
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			p.add(&p.network, "%d %s", ev.Response.Status, ev.Response.URL)
		}
	case *network.EventLoadingFailed:
		p.mu.Lock()
		url := p.requests[ev.RequestID]
		p.mu.Unlock()
		msg := fmt.Sprintf("failed %s %s: %s", ev.Type, url, ev.ErrorText)
		if ev.BlockedReason != "" {
			msg += " (blocked: " + string(ev.BlockedReason) + ")"
		}
		if ev.CorsErrorStatus != nil {
			msg += " (CORS: " + string(ev.CorsErrorStatus.CorsError) + ")"
		}
		p.add(&p.network, "%s", msg)
	}
}

// issue sorts an Audits issue: CSP, COEP/CORP and CORS blocks fail the test; the
// rest (deprecations, quirks and the like) are shown but allowed.
func (p *browserProblems) issue(is *audits.InspectorIssue) {
	d := is.Details
	switch {
	case d != nil && d.ContentSecurityPolicyIssueDetails != nil:
		c := d.ContentSecurityPolicyIssueDetails
		where := ""
		if c.SourceCodeLocation != nil {
			where = fmt.Sprintf(" at %s:%d:%d", c.SourceCodeLocation.URL, c.SourceCodeLocation.LineNumber, c.SourceCodeLocation.ColumnNumber)
		}
		p.add(&p.csp, "audit %s: %s blocked %q by %q%s", is.Code, c.ContentSecurityPolicyViolationType,
			c.BlockedURL, c.ViolatedDirective, where)
	case d != nil && d.BlockedByResponseIssueDetails != nil:
		b := d.BlockedByResponseIssueDetails
		url := ""
		if b.Request != nil {
			url = b.Request.URL
		}
		p.add(&p.csp, "audit %s: %s %s", is.Code, b.Reason, url)
	case d != nil && d.CorsIssueDetails != nil:
		p.add(&p.csp, "audit %s: %+v", is.Code, d.CorsIssueDetails.CorsErrorStatus)
	case is.Code == audits.InspectorIssueCodeMixedContentIssue:
		p.add(&p.csp, "audit %s", is.Code)
	case d != nil && d.GenericIssueDetails != nil:
		// e.g. Swagger UI's inputs without id or name, or deep-link hash changes.
		p.warn("audit %s: %s", is.Code, d.GenericIssueDetails.ErrorType)
	default:
		b, _ := json.Marshal(is)
		p.warn("audit %s: %s", is.Code, b)
	}
}

func browserArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// browserServer serves the whole Levqor handler on loopback with a fresh SQLite
// store; each opt may change the Options before the server is built.
func browserServer(t *testing.T, opts ...func(*testOptions)) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "levqor.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	o := testOptions{Store: st, Options: server.Options{
		Logger:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
		MaxBodyBytes: 512 << 10,
		Started:      time.Now(),
	}}
	for _, opt := range opts {
		opt(&o)
	}
	h, err := server.New(o.build(t))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// startBrowser starts headless Chromium (skipping the test without it, outside
// CI) with one tab that records console errors, policy violations and failed
// requests into the returned problems. Everything stops when the test ends, at the
// latest 60 seconds after it started the browser.
func startBrowser(t *testing.T) (context.Context, *browserProblems) {
	t.Helper()
	if _, err := os.Stat(browserChromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (.ci/run installs Debian's chromium): %v", browserChromium, err)
		}
		t.Skipf("%s not found; install Debian's chromium package to run the browser tests", browserChromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browserChromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.UserDataDir(t.TempDir()),
		// Chromium keeps its singleton socket and, with disable-dev-shm-usage, its
		// shared memory under TMPDIR; keep them in the test's temp dir too.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1280, 1024),
	)
	t.Cleanup(cancelAlloc) // waits for the browser to exit, before t.TempDir is removed
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)

	problems := &browserProblems{warnings: map[string]int{}, requests: map[network.RequestID]string{}}
	if err := chromedp.Listen(bctx, problems.listen); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Do(bctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, audits.Enable, cdp.Empty{}); err != nil {
				return fmt.Errorf("audits.enable: %w", err)
			}
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: browserCSPRecorder})
			return err
		}),
	)
	if err != nil {
		t.Fatalf("prepare the tab: %v", err)
	}
	return bctx, problems
}

// TestBrowserDocs loads /docs in headless Chromium under the page's real headers
// (CSP, COEP, COOP, CORP) and checks that Swagger UI renders every operation of
// the spec with no console error, no CSP violation and no failed request.
func TestBrowserDocs(t *testing.T) {
	srv := browserServer(t)
	bctx, problems := startBrowser(t)

	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(srv.URL+"/docs"))
	if err != nil {
		t.Fatalf("navigate to /docs: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("GET /docs: status %d", resp.Status)
	}
	// The checks below mean something only under the real policy and isolation.
	for name, want := range map[string]string{
		"Content-Security-Policy":      "script-src 'self'",
		"Cross-Origin-Embedder-Policy": "require-corp",
		"Cross-Origin-Opener-Policy":   "same-origin",
	} {
		if got := browserHeader(resp.Headers, name); !strings.Contains(got, want) {
			t.Fatalf("GET /docs: %s = %q, want it to contain %q", name, got, want)
		}
	}

	// Swagger UI fetches /openapi.json and then renders one .opblock per operation.
	waitCtx, cancelWait := context.WithTimeout(bctx, 20*time.Second)
	err = chromedp.Do(waitCtx, chromedp.WaitVisible(chromedp.CSS("#swagger-ui .opblock")))
	cancelWait()
	if err != nil {
		t.Fatalf("Swagger UI rendered no operation: %v\nconsole: %q\ncsp: %q\nnetwork: %q", err,
			problems.snapshot(&problems.console), problems.snapshot(&problems.csp), problems.snapshot(&problems.network))
	}

	spec, err := apispec.Load()
	if err != nil {
		t.Fatal(err)
	}
	wantOps := 0
	for _, item := range spec.Paths.Map() {
		wantOps += len(item.Operations())
	}
	gotOps, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#swagger-ui .opblock").length`))
	if err != nil {
		t.Fatal(err)
	}
	if gotOps != wantOps {
		t.Errorf("Swagger UI shows %d operations, the spec has %d", gotOps, wantOps)
	}
	title, err := chromedp.Run(bctx, chromedp.Evaluate[string](
		`(document.querySelector("#swagger-ui .info .title") || {}).textContent || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, spec.Info.Title) {
		t.Errorf("Swagger UI title %q does not show the spec's title %q", title, spec.Info.Title)
	}

	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	browserCheckScreenshot(t, shot)

	// Open every operation, so the parts drawn only on demand (parameters,
	// responses, highlighted examples, schemas) run under the policy too.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](
		`(function () { var s = document.querySelectorAll("#swagger-ui .opblock-summary-control"); s.forEach(function (e) { e.click() }); return s.length })()`)); err != nil {
		t.Fatal(err)
	}
	openCtx, cancelOpen := context.WithTimeout(bctx, 30*time.Second)
	_, err = chromedp.Run(openCtx, chromedp.Poll[bool](fmt.Sprintf(
		`document.querySelectorAll("#swagger-ui .opblock.is-open .responses-wrapper").length === %d`, wantOps),
		chromedp.WithPollingTimeout(30*time.Second)))
	cancelOpen()
	if err != nil {
		n, _ := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#swagger-ui .opblock.is-open .responses-wrapper").length`))
		t.Errorf("opened %d of %d operations: %v", n, wantOps, err)
	}
	browserCheckPage(t, bctx, problems)
}

// browserCheckPage fails the test for every problem recorded on the tab since the
// last check — console errors, CSP violations seen by the page or by DevTools,
// failed requests — and then proves the recorders listen, with a load the policy
// must block. It leaves problems empty for the next page.
func browserCheckPage(t *testing.T, bctx context.Context, problems *browserProblems) {
	t.Helper()
	// Late reports (exceptions in effects, blocked lazy loads) arrive within a few
	// frames; give them a moment before judging.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-bctx.Done():
		t.Fatal(bctx.Err())
	}

	pageCSP, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.__levqorCSP`))
	if err != nil {
		t.Fatalf("read the page's securitypolicyviolation events (was the recorder installed?): %v", err)
	}

	problems.mu.Lock()
	allowed := make([]string, 0, len(problems.warnings))
	for w, n := range problems.warnings {
		allowed = append(allowed, fmt.Sprintf("%s (×%d)", w, n))
	}
	problems.mu.Unlock()
	sort.Strings(allowed)
	for _, w := range allowed {
		t.Logf("allowed: %s", w)
	}
	for _, m := range problems.snapshot(&problems.console) {
		t.Errorf("console error: %s", m)
	}
	for _, m := range pageCSP {
		t.Errorf("securitypolicyviolation: %s", m)
	}
	for _, m := range problems.snapshot(&problems.csp) {
		t.Errorf("blocked by policy: %s", m)
	}
	for _, m := range problems.snapshot(&problems.network) {
		t.Errorf("network: %s", m)
	}

	// Control: a load the policy must block is seen by both the page's listener and
	// DevTools, so the empty lists above mean "no violation", not "not listening".
	before := len(problems.snapshot(&problems.csp))
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](
		`(function () { var i = new Image(); i.src = "http://127.0.0.1:9/levqor-csp-probe.png"; document.body.appendChild(i); return true })()`)); err != nil {
		t.Fatal(err)
	}
	probeCtx, cancelProbe := context.WithTimeout(bctx, 5*time.Second)
	defer cancelProbe()
	for seen := 0; ; {
		devtools := len(problems.snapshot(&problems.csp)) - before
		if seen > len(pageCSP) && devtools > 0 {
			break
		}
		if err := probeCtx.Err(); err != nil {
			t.Fatalf("the control CSP violation went unreported (page listener: %d new, DevTools: %d new): %v",
				seen-len(pageCSP), devtools, err)
		}
		if n, err := chromedp.Run(probeCtx, chromedp.Evaluate[int](`window.__levqorCSP.length`)); err == nil {
			seen = n
		}
		time.Sleep(50 * time.Millisecond)
	}
	problems.reset()
}

// browserHeader returns a response header as DevTools reports it, whatever the
// case of its name.
func browserHeader(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// browserCheckScreenshot checks the screenshot is a real rendering of the page (a
// PNG of the viewport's size with more than a few colours), saves it in the test's
// temp dir, and leaves a copy at /tmp/docs.png for a person to look at.
func browserCheckScreenshot(t *testing.T, shot []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docs.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/tmp/docs.png", shot, 0o644); err != nil {
		t.Logf("save /tmp/docs.png: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 800 || b.Dy() < 600 {
		t.Errorf("screenshot is %dx%d, want at least 800x600", b.Dx(), b.Dy())
	}
	colours := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	// A blank or error page has a handful of colours; Swagger UI's coloured
	// method badges and anti-aliased text have hundreds.
	if len(colours) < 50 {
		t.Errorf("screenshot has only %d colours; the page looks blank (see %s)", len(colours), path)
	}
	t.Logf("screenshot %dx%d, %d colours, %d bytes: %s (copy at /tmp/docs.png)", b.Dx(), b.Dy(), len(colours), len(shot), path)
}
