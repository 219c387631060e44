package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"simcash/store"
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
