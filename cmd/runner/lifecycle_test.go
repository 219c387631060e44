package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
	"simcash/sweep"
)

// TestLostRunAndMark: a runner waiting on a slow model stays running on its
// heartbeats alone; SIGKILLed, it shows as lost within the lost-after time;
// `results mark` records it failed through the persister.
func TestLostRunAndMark(t *testing.T) {
	b := binaries(t, "persister", "runner", "results")
	dir := t.TempDir()
	db := filepath.Join(dir, "all.db")
	const lostAfter = 3 * time.Second
	t.Setenv("SIMCASH_LOST_AFTER", lostAfter.String())
	p := startPersister(t, b["persister"], db, "SIMCASH_LOST_AFTER="+lostAfter.String())
	env := childEnv("SIMCASH_NATS_URL="+p.url, "OPENAI_API_KEY=", "SIMCASH_LOST_AFTER="+lostAfter.String(),
		"SIMCASH_HEARTBEAT_INTERVAL=300ms")

	// The model takes far longer than the lost-after time to answer.
	release := make(chan struct{})
	llm := newFakeLLM(t, func(n int) (string, int, int) {
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
		return policyAnswer(0.3), 10, 10
	})
	t.Cleanup(func() { close(release) }) // before the server's Close waits for the handler
	exp := llmExperiment(t, dir, llm.srv.URL+"/v1/")
	runner := exec.Command(b["runner"], "run", exp, "--quiet")
	runner.Dir, runner.Env = dir, env
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Process.Kill(); runner.Wait() })

	status := func() (string, string) {
		t.Helper()
		out := mustProc(t, dir, env, b["results"], "list", "--db", db, "--format", "json").stdout
		var list []store.ExperimentSummary
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			return "", ""
		}
		return list[0].ExperimentID, list[0].Status
	}
	waitStatus := func(want string, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			id, st := status()
			if st == want {
				return id
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %q after %s, want %s", st, within, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus("running", 30*time.Second)
	for llm.count() == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	// Waiting on the model, the run sends heartbeats only: it stays running
	// for twice the lost-after time.
	quiet := time.Now()
	for time.Since(quiet) < 2*lostAfter {
		if _, st := status(); st != "running" {
			t.Fatalf("a run waiting on its model shows as %q after %s", st, time.Since(quiet).Round(time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := runner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	id := waitStatus("lost", lostAfter+20*time.Second)
	t.Logf("lost %s after the kill", time.Since(killed).Round(time.Millisecond))

	if r := runProc(t, dir, env, b["results"], "mark", id, "--db", db, "--reason", "x"); r.code != 2 || !strings.Contains(r.stderr, "--failed") {
		t.Errorf("mark without --failed: exit %d, %s", r.code, r.stderr)
	}
	out := mustProc(t, dir, env, b["results"], "mark", id, "--failed", "--reason", "killed in a test", "--db", db).stdout
	if !strings.Contains(out, "marked "+id+" failed") {
		t.Errorf("mark printed %q", out)
	}
	waitStatus("failed", 30*time.Second)
	show := mustProc(t, dir, env, b["results"], "show", id, "--db", db).stdout
	if !strings.Contains(show, "marked failed: killed in a test") {
		t.Errorf("show lacks the reason:\n%s", show)
	}
	if r := runProc(t, dir, env, b["results"], "mark", id, "--failed", "--reason", "again", "--db", db); r.code != 2 || !strings.Contains(r.stderr, "already ended: failed") {
		t.Errorf("second mark: exit %d, %s", r.code, r.stderr)
	}
	p.stop(t)
	// The marked completion was stored like any record: readable directly.
	st := openStore(t, db)
	d, err := st.Show(t.Context(), id)
	if err != nil || d.Status != "failed" || d.CompletedAt == nil {
		t.Errorf("stored run: %+v, %v", d, err)
	}
}

// TestResumeKilledRun SIGKILLs a runner mid-run, resumes the run with
// `runner resume`, and compares its stored iterations and evaluations with
// an uninterrupted run of the same seed against the same scripted model
// (whose answers depend only on the prompt).
func TestResumeKilledRun(t *testing.T) {
	t.Run("scripted model", func(t *testing.T) {
		dir := t.TempDir()
		var llm *fakeLLM
		llm = newFakeLLM(t, func(n int) (string, int, int) {
			llm.mu.Lock()
			prompt := strings.Join(llm.messages[n], "\n")
			llm.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			sum := sha256.Sum256([]byte(prompt))
			return policyAnswer(float64(sum[0]%6) / 10), 100 + int(sum[1]), 20
		})
		resumeKilled(t, dir, llmExperiment(t, dir, llm.srv.URL+"/v1/"), "8", 3)
	})
	t.Run("builtin:search", func(t *testing.T) {
		// exp2 with enough bootstrap samples that an iteration takes a while.
		dir := t.TempDir()
		exp := writeExperiment(t, dir, testdataPath(t, "experiments/exp2.yaml"),
			"scenario: ../scenarios/exp2.yaml", fmt.Sprintf("scenario: %q", testdataPath(t, "scenarios/exp2.yaml")),
			"num_samples: 50", "num_samples: 10000")
		resumeKilled(t, dir, exp, "6", 2)
	})
}

// resumeKilled runs exp (iters iterations) uninterrupted as the reference,
// then in a runner process that is SIGKILLed once minIters iterations are
// stored, resumes it, and compares the stored iterations and evaluations.
func resumeKilled(t *testing.T, dir, exp, iters string, minIters int) {
	b := binaries(t, "persister", "runner", "results")
	refDB := filepath.Join(dir, "ref.db")
	mustRun(t, "run", exp, "--db", refDB, "--quiet", "--max-iterations", iters)

	db := filepath.Join(dir, "all.db")
	p := startPersister(t, b["persister"], db)
	env := childEnv("SIMCASH_NATS_URL="+p.url, "OPENAI_API_KEY=")
	runner := exec.Command(b["runner"], "run", exp, "--quiet", "--max-iterations", iters)
	runner.Dir, runner.Env = dir, env
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Process.Kill(); runner.Wait() })
	list := func() []store.ExperimentSummary {
		t.Helper()
		var l []store.ExperimentSummary
		if err := json.Unmarshal([]byte(mustProc(t, dir, env, b["results"], "list", "--db", db, "--format", "json").stdout), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	deadline := time.Now().Add(time.Minute)
	var id string
	for {
		if l := list(); len(l) == 1 && l[0].NumIterations >= minIters {
			id = l[0].ExperimentID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner stored no %d iterations within a minute", minIters)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := runner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	runner.Wait()
	cut := list()[0]
	if cut.Status != "running" {
		t.Fatalf("after the kill: %+v; want a run cut short", cut)
	}

	res := mustProc(t, dir, env, b["runner"], "resume", id, "--from", db, "--quiet")
	if !strings.Contains(res.stderr, "resuming "+id) || !strings.Contains(res.stdout, "status       completed") {
		t.Errorf("resume printed:\n%s\n%s", res.stdout, res.stderr)
	}
	deadline = time.Now().Add(time.Minute)
	for list()[0].Status != "completed" {
		if time.Now().After(deadline) {
			t.Fatal("the resumed run was not stored as completed within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := runProc(t, dir, env, b["runner"], "resume", id, "--from", db); r.code != 2 || !strings.Contains(r.stderr, "has ended (completed)") {
		t.Errorf("resuming a completed run: exit %d, %s", r.code, r.stderr)
	}
	p.stop(t)

	records := func(path string) ([]store.IterationRow, []store.EvaluationRow) {
		st := openStore(t, path)
		l, err := st.List(t.Context(), store.ListOptions{})
		if err != nil || len(l) != 1 {
			t.Fatalf("%s: %d runs, %v", path, len(l), err)
		}
		its, err := st.Iterations(t.Context(), l[0].ExperimentID)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.Evaluations(t.Context(), l[0].ExperimentID, store.EvalFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range its {
			its[i].ExpID, its[i].Timestamp = "", time.Time{}
			if its[i].Iteration != i+1 {
				t.Errorf("%s: iteration %d at position %d: a gap or a duplicate", path, its[i].Iteration, i+1)
			}
		}
		for i := range evs {
			evs[i].ExpID, evs[i].Timestamp = "", time.Time{}
		}
		return its, evs
	}
	wantIts, wantEvs := records(refDB)
	gotIts, gotEvs := records(db)
	bw, _ := json.Marshal([]any{wantIts, wantEvs})
	bg, _ := json.Marshal([]any{gotIts, gotEvs})
	if cut.NumIterations >= len(wantIts) {
		t.Errorf("the kill came after all %d iterations were stored: nothing was resumed", cut.NumIterations)
	}
	t.Logf("killed after %d stored iterations; the run has %d", cut.NumIterations, len(wantIts))
	if len(wantIts) <= minIters || len(gotIts) != len(wantIts) || string(bw) != string(bg) {
		for i := range min(len(bw), len(bg)) {
			if bw[i] != bg[i] {
				t.Errorf("the resumed run's records differ from the uninterrupted run's at byte %d:\n got ...%s\nwant ...%s", i, bg[max(0, i-300):min(len(bg), i+200)], bw[max(0, i-300):min(len(bw), i+200)])
				break
			}
		}
		t.Errorf("%d iterations, want %d (more than %d)", len(gotIts), len(wantIts), minIters)
	}
}

// startWorker starts `runner worker` and returns it with its stderr.
func startWorker(t *testing.T, bin, dir string, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"worker"}, args...)...)
	cmd.Dir, cmd.Env = dir, env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, out
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSweepOnWorkers queues 12 jobs and one that cannot run, runs them on
// three worker processes against one persister, and SIGKILLs a worker in
// the middle of a job: every run is stored once and completed, the killed
// job is resumed by another worker, and the broken job ends as failed after
// its deliveries without blocking the others.
func TestSweepOnWorkers(t *testing.T) {
	b := binaries(t, "persister", "runner", "results")
	dir := t.TempDir()
	db := filepath.Join(dir, "all.db")
	p := startPersister(t, b["persister"], db)
	env := childEnv("SIMCASH_NATS_URL="+p.url, "OPENAI_API_KEY=")
	var llm *fakeLLM
	llm = newFakeLLM(t, func(n int) (string, int, int) {
		llm.mu.Lock()
		prompt := strings.Join(llm.messages[n], "\n")
		llm.mu.Unlock()
		time.Sleep(250 * time.Millisecond) // slow enough that a job is still running when the test kills its worker
		sum := sha256.Sum256([]byte(prompt))
		return policyAnswer(float64(sum[0]%6) / 10), 100, 20
	})
	exp := llmExperiment(t, dir, llm.srv.URL+"/v1/")

	out := mustProc(t, dir, env, b["runner"], "sweep", exp, "--seeds", "1-6", "--set", "convergence.max_iterations=4,5").stdout
	m := regexp.MustCompile(`sweep (\S+): 12 jobs queued`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sweep printed %q", out)
	}
	sweepID := m[1]
	// A job whose scenario does not load fails on every delivery.
	broken := sweep.Job{SweepID: sweepID, Index: 13, RunID: sweepID + "-13", Label: "broken",
		Config: json.RawMessage(`{"name":"broken","scenario":"x.yaml","scenario_content":"agents: [","llm":{"model":"builtin:search"},"master_seed":1,"evaluation":{"mode":"deterministic","num_samples":1,"ticks":2}}`)}
	nc, err := bus.Connect(t.Context(), bus.Config{URL: p.url}) // finds the hosted server's token
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := sweep.Submit(t.Context(), js, []sweep.Job{broken}); err != nil {
		t.Fatal(err)
	}

	workerArgs := []string{"--ack-wait", "2s", "--max-deliveries", "3"}
	var workers []*exec.Cmd
	var logs []*syncBuffer
	for range 3 {
		w, log := startWorker(t, b["runner"], dir, env, workerArgs...)
		workers, logs = append(workers, w), append(logs, log)
	}
	list := func() []store.ExperimentSummary {
		t.Helper()
		var l []store.ExperimentSummary
		if err := json.Unmarshal([]byte(mustProc(t, dir, env, b["results"], "list", "--db", db, "--sweep", sweepID, "--format", "json", "--limit", "0").stdout), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	// Kill worker 0 once one of its jobs has stored an iteration.
	deadline := time.Now().Add(time.Minute)
	var cut []string // runs in progress at the kill
	for cut == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no worker stored an iteration within a minute:\n%s", logs[0].String())
		}
		// The job worker 0 runs now: its last start without a done after it.
		current := ""
		for _, line := range strings.Split(logs[0].String(), "\n") {
			if m := regexp.MustCompile(`job (started|done)".* run=(\S+) `).FindStringSubmatch(line); m != nil {
				current = m[2]
				if m[1] == "done" {
					current = ""
				}
			}
		}
		for _, r := range list() {
			if r.ExperimentID == current && r.Status == "running" && r.NumIterations >= 1 && r.NumIterations <= 2 {
				cut = append(cut, r.ExperimentID)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := workers[0].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed worker 0 with %v in progress", cut)

	deadline = time.Now().Add(2 * time.Minute)
	for {
		l := list()
		done, failed := 0, 0
		for _, r := range l {
			switch r.Status {
			case "completed":
				done++
			case "failed":
				failed++
			}
		}
		if done == 12 && failed == 1 && len(l) == 13 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after two minutes: %d runs, %d completed, %d failed; want 13, 12, 1\n%s\n%s", len(l), done, failed, logs[1].String(), logs[2].String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	resumed := false
	for _, id := range cut {
		for _, log := range logs[1:] {
			if regexp.MustCompile(`resuming ` + id + ` after iteration [1-9]`).MatchString(log.String()) {
				resumed = true
			}
		}
	}
	if !resumed {
		t.Errorf("no other worker resumed %v:\n%s\n%s", cut, logs[1].String(), logs[2].String())
	}
	show := mustProc(t, dir, env, b["results"], "show", sweepID+"-13", "--db", db).stdout
	if !strings.Contains(show, "failed on 3 deliveries") || !strings.Contains(show, "recorded scenario") {
		t.Errorf("the broken job's run:\n%s", show)
	}
	// Each run's iterations are complete and stored once (keys are unique;
	// a gap would show as a missing number).
	for _, r := range list() {
		if r.Status != "completed" {
			continue
		}
		var its []store.IterationRow
		if err := json.Unmarshal([]byte(mustProc(t, dir, env, b["results"], "iterations", r.ExperimentID, "--db", db, "--format", "json").stdout), &its); err != nil {
			t.Fatal(err)
		}
		for i, it := range its {
			if it.Iteration != i+1 {
				t.Fatalf("%s: iteration %d at position %d", r.ExperimentID, it.Iteration, i+1)
			}
		}
		if len(its) == 0 || len(its) != r.NumIterations {
			t.Errorf("%s: %d iterations stored, completion says %d", r.ExperimentID, len(its), r.NumIterations)
		}
	}
	cmp := mustProc(t, dir, env, b["results"], "compare", "--sweep", sweepID, "--group-by", "config", "--db", db).stdout
	if strings.Count(cmp, "\nGroup ") != 3 { // max_iterations 4, 5, and the broken job's
		t.Errorf("compare --sweep --group-by config:\n%s", cmp)
	}
}

// promptHashLLM is a scripted model whose answers depend only on the prompt;
// hold, when set, is called first with the request number (to interrupt a
// run at a chosen call).
func promptHashLLM(t *testing.T, hold func(n int)) *fakeLLM {
	var llm *fakeLLM
	llm = newFakeLLM(t, func(n int) (string, int, int) {
		if hold != nil {
			hold(n)
		}
		llm.mu.Lock()
		prompt := strings.Join(llm.messages[n], "\n")
		llm.mu.Unlock()
		sum := sha256.Sum256([]byte(prompt))
		return policyAnswer(float64(sum[0]%6) / 10), 100, 20
	})
	return llm
}

// TestInterruptedRunResumes: Ctrl-C (a cancelled context) records the run
// as interrupted, exits 130 and says how to resume; `runner resume` then
// completes it with the iterations and evaluations of an uninterrupted run.
func TestInterruptedRunResumes(t *testing.T) {
	dir := t.TempDir()
	ref := promptHashLLM(t, nil)
	refDB := filepath.Join(dir, "ref.db")
	mustRun(t, "run", llmExperiment(t, t.TempDir(), ref.srv.URL+"/v1/"), "--db", refDB, "--quiet", "--max-iterations", "6")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	llm := promptHashLLM(t, func(n int) {
		if n == 5 { // in iteration 3
			cancel()
		}
	})
	exp := llmExperiment(t, dir, llm.srv.URL+"/v1/")
	db := filepath.Join(dir, "all.db")
	if code := runRunner(t, ctx, "run", exp, "--db", db, "--quiet", "--max-iterations", "6", "--model-calls", "1"); code != 130 {
		t.Fatalf("interrupted run exited %d, want 130", code)
	}
	st := openStore(t, db)
	d := onlyExperiment(t, st)
	st.Close()
	if d.Status != schema.StatusInterrupted || d.NumIterations >= 6 {
		t.Fatalf("stored %s after %d iterations, want interrupted early", d.Status, d.NumIterations)
	}
	if code := runRunner(t, t.Context(), "resume", d.ExperimentID, "--from", db, "--quiet"); code != 0 {
		t.Fatalf("resume exited %d", code)
	}
	load := func(path string) (string, []store.IterationRow, []store.EvaluationRow) {
		st := openStore(t, path)
		defer st.Close()
		d := onlyExperiment(t, st)
		its, _ := st.Iterations(t.Context(), d.ExperimentID)
		evs, _ := st.Evaluations(t.Context(), d.ExperimentID, store.EvalFilter{})
		for i := range its {
			its[i].ExpID, its[i].Timestamp = "", time.Time{}
		}
		for i := range evs {
			evs[i].ExpID, evs[i].Timestamp = "", time.Time{}
		}
		return d.Status, its, evs
	}
	status, gotIts, gotEvs := load(db)
	_, wantIts, wantEvs := load(refDB)
	bg, _ := json.Marshal([]any{gotIts, gotEvs})
	bw, _ := json.Marshal([]any{wantIts, wantEvs})
	if status != schema.StatusCompleted || string(bg) != string(bw) {
		t.Errorf("after resume: %s; records equal to the uninterrupted run's: %v\n got %s\nwant %s", status, string(bg) == string(bw), bg, bw)
	}
}
