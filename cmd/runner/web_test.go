package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds Debian's Chromium (installed by .ci/run) or another
// Chrome.
func browserPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// serveProc starts `results serve` on a free loopback port and returns its
// base URL.
func serveProc(t *testing.T, bin, db string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--db", db, "--listen", "127.0.0.1:0")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		m := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(l)
		if !ok || m == nil {
			t.Fatalf("results serve printed %q, want its address:\n%s", l, stderr.String())
		}
		return strings.TrimSuffix(m[1], "/")
	case <-time.After(30 * time.Second):
		t.Fatalf("results serve did not print its address within 30s:\n%s", stderr.String())
	}
	return ""
}

// page drives one browser tab; a failing step names the page and what
// was missing, and leaves a screenshot in the test's temp dir.
type page struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	name string // current page, for messages
	shot int
}

func (p *page) run(what string, actions ...chromedp.Action) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		p.screenshot("failed")
		p.t.Fatalf("%s page: %s: %v", p.name, what, err)
	}
}

func (p *page) open(name, url string) {
	p.t.Helper()
	p.name = name
	p.run("load "+url, chromedp.Navigate(url), chromedp.WaitReady("body", chromedp.ByQuery))
	var msg string
	p.eval(`(document.querySelector('#error') || {}).textContent || ''`, &msg)
	if msg != "" {
		p.screenshot("error")
		p.t.Fatalf("%s page: %s answered with an error: %s", name, url, msg)
	}
}

// eval evaluates a JavaScript expression into out.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	p.run("evaluate "+expr, chromedp.Evaluate(expr, out))
}

// waitFor evaluates expr (a boolean) until it is true, for at most d.
func (p *page) waitFor(what, expr string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.screenshot("failed")
			p.t.Fatalf("%s page: %s not seen within %s (last error: %v)", p.name, what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *page) screenshot(label string) {
	var png []byte
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		p.t.Logf("screenshot of the %s page: %v", p.name, err)
		return
	}
	p.shot++
	path := filepath.Join(p.dir, fmt.Sprintf("%02d-%s-%s.png", p.shot, strings.ReplaceAll(p.name, " ", "-"), label))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Log(err)
	}
}

// TestDashboardInBrowser drives Chromium through the dashboard while two
// exp2 runs go through a persister: the runs page lists them as they
// start, a live run's chart grows, two ticked runs compare side by side,
// and the audit page of the scripted-model run shows its prompts.
func TestDashboardInBrowser(t *testing.T) {
	browser := browserPath()
	if browser == "" {
		t.Skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
	}
	b := binaries(t, "persister", "runner", "results")
	dir := t.TempDir()
	db := filepath.Join(dir, "all.db")
	p := startPersister(t, b["persister"], db)
	env := childEnv("SIMCASH_NATS_URL="+p.url, "OPENAI_API_KEY=")
	base := serveProc(t, b["results"], db, childEnv())

	// A model that answers slowly, so the run stays live for a while.
	fractions := []float64{0.4, 0.3, 0.2, 0.25, 0.15}
	llm := newFakeLLM(t, func(n int) (string, int, int) {
		time.Sleep(250 * time.Millisecond)
		return policyAnswer(fractions[n%len(fractions)]), 800 + n, 30
	})
	scn := testdataPath(t, "scenarios/exp2.yaml")
	slowExp := writeExperiment(t, dir, testdataPath(t, "experiments/exp2.yaml"),
		"scenario: ../scenarios/exp2.yaml", fmt.Sprintf("scenario: %q", scn),
		"model: builtin:search", fmt.Sprintf("model: openai:test\n  base_url: %q", llm.srv.URL+"/v1/"))

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1300, 1000))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first Run starts the browser; it lives as long as bctx, so later
	// steps can use deadlines of their own.
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	shots := dir
	if d := os.Getenv("SIMCASH_SCREENSHOTS"); d != "" { // keep them after the test
		shots = d
	}
	pg := &page{t: t, ctx: bctx, dir: shots}
	t.Logf("screenshots go to %s", shots)

	// The runs page is open before any run starts: rows must arrive live.
	pg.open("runs", base+"/")
	pg.waitFor("an empty runs table", `document.querySelector('#runrows') !== null`, 10*time.Second)

	slow := exec.Command(b["runner"], "run", slowExp, "--seed", "1", "--max-iterations", "6")
	slow.Dir, slow.Env = dir, env
	var slowOut strings.Builder
	slow.Stdout, slow.Stderr = &slowOut, &slowOut
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Wait() }()
	t.Cleanup(func() { slow.Process.Kill() })

	pg.waitFor("the live run's row, without a reload", `document.querySelectorAll('#runrows tr[data-id]').length === 1`, 30*time.Second)
	var liveID string
	pg.eval(`document.querySelector('#runrows tr[data-id]').dataset.id`, &liveID)
	pg.screenshot("live-run-listed")

	pg.open("run", base+"/runs/"+liveID)
	pg.waitFor("a convergence chart", `(() => { const c = document.querySelector('#chart'); return c && !c.hidden && Number(c.dataset.iterations) >= 1 && c.complete && c.naturalWidth > 0; })()`, 30*time.Second)
	var first int
	pg.eval(`Number(document.querySelector('#chart').dataset.iterations)`, &first)
	var status string
	pg.eval(`document.querySelector('#status').textContent`, &status)
	if status != "running" {
		t.Fatalf("run page: status %q when the chart first showed %d iterations, want running (the run ended too soon to watch)", status, first)
	}
	pg.screenshot("chart-first")
	pg.waitFor(fmt.Sprintf("the chart growing past %d iterations", first),
		fmt.Sprintf(`Number(document.querySelector('#chart').dataset.iterations) > %d && document.querySelectorAll('#iteration-rows tr').length > %d`, first, first), 30*time.Second)
	pg.waitFor("the run completing", `document.querySelector('#status').textContent === 'completed'`, 60*time.Second)
	pg.screenshot("completed")
	select {
	case err := <-slowDone:
		if err != nil {
			t.Fatalf("the scripted-model runner failed: %v\n%s", err, slowOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("the scripted-model runner did not exit")
	}

	mustProc(t, dir, env, b["runner"], "run", testdataPath(t, "experiments/exp2.yaml"), "--seed", "2", "--max-iterations", "6", "--quiet")
	pg.open("runs", base+"/")
	pg.waitFor("both runs listed as completed", `document.querySelectorAll('#runrows .badge.completed').length === 2`, 30*time.Second)
	var ids []string
	pg.eval(`Array.from(document.querySelectorAll('#runrows tr[data-id]'), r => r.dataset.id)`, &ids)
	if len(ids) != 2 || !slices.Contains(ids, liveID) {
		t.Fatalf("runs page lists %v, want the two runs", ids)
	}
	pg.screenshot("both-listed")
	pg.run("tick both runs and press compare",
		chromedp.Click(`#runrows tr:nth-child(1) input[name=id]`, chromedp.ByQuery),
		chromedp.Click(`#runrows tr:nth-child(2) input[name=id]`, chromedp.ByQuery),
		chromedp.Click(`#compare-button`, chromedp.ByQuery))
	pg.name = "compare"
	pg.waitFor("both runs side by side", fmt.Sprintf(`(() => { const t = document.querySelector('#compare-table'); return t !== null && t.textContent.includes(%q) && t.textContent.includes(%q); })()`, ids[0], ids[1]), 30*time.Second)
	pg.waitFor("the overlaid chart", `(() => { const c = document.querySelector('#compare-chart'); return c.complete && c.naturalWidth > 0; })()`, 30*time.Second)
	pg.screenshot("side-by-side")

	pg.open("audit", base+"/runs/"+liveID+"/audit")
	llm.mu.Lock()
	msgs := slices.Clone(llm.messages)
	llm.mu.Unlock()
	if len(msgs) == 0 || len(msgs[0]) < 2 {
		t.Fatal("the scripted model received no prompt")
	}
	var text string
	pg.eval(`document.body.innerText`, &text)
	pg.screenshot("prompts")
	for _, line := range strings.Split(msgs[0][1], "\n")[:3] {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(text, line) {
			t.Errorf("audit page: the user prompt's line %q is missing", line)
		}
	}
	for _, want := range []string{"System prompt", "User prompt", "Answer", "Commit less liquidity.", "800 prompt + 30 completion tokens"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
}
