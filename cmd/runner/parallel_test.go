package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

// childEnv is the environment of the processes these tests start: this
// process's without SIMCASH_* settings, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIMCASH_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// persisterProc is a persister process hosting its embedded NATS server.
type persisterProc struct {
	cmd    *exec.Cmd
	db     string
	url    string
	stderr bytes.Buffer
	done   chan struct{}
	err    error // Wait's result, set when done is closed
}

// startPersister starts `persister --db db --listen 127.0.0.1:0` and waits
// until it advertises its NATS URL in <db>.persister.json.
func startPersister(t *testing.T, bin, db string, env ...string) *persisterProc {
	t.Helper()
	p := &persisterProc{db: db, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--db", db, "--listen", "127.0.0.1:0", "--max-wait", "20ms")
	p.cmd.Env = childEnv(env...)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})

	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := bus.ReadInfo(db)
		if err == nil && info.URL != "" {
			if !strings.HasPrefix(info.URL, "nats://127.0.0.1:") {
				t.Fatalf("persister advertises %s, want a loopback URL", info.URL)
			}
			if info.PID != p.cmd.Process.Pid {
				t.Fatalf("%s names pid %d, the persister is %d", bus.InfoFile(db), info.PID, p.cmd.Process.Pid)
			}
			p.url = info.URL
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("persister exited before advertising its URL (%v):\n%s", p.err, p.stderr.String())
		case <-deadline:
			t.Fatalf("persister did not write %s within 30s (last: %v):\n%s", bus.InfoFile(db), err, p.stderr.String())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and waits for the persister to drain, commit and exit.
func (p *persisterProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("persister still running 30s after SIGTERM:\n%s", p.stderr.String())
	}
	if p.err != nil {
		t.Fatalf("persister exited with %v after SIGTERM, want status 0:\n%s", p.err, p.stderr.String())
	}
}

// runnerSummary is what `runner run` printed about its experiment.
type runnerSummary struct {
	id         string
	status     string
	iterations int
	finalCost  string // as printed, e.g. $20.12
	bestCost   string
	agentCosts map[string]string
}

var (
	sumIDRe    = regexp.MustCompile(`(?m)^experiment\s+(\S+)$`)
	sumStatus  = regexp.MustCompile(`(?m)^status\s+(\S+)$`)
	sumIters   = regexp.MustCompile(`(?m)^iterations\s+(\d+)$`)
	sumCosts   = regexp.MustCompile(`(?m)^final cost\s+(\S+) \(best (\S+)\)$`)
	sumAgentRe = regexp.MustCompile(`(?m)^(BANK_\w+)\s+(\S+)\s+\{`)
)

func parseSummary(out string) (runnerSummary, error) {
	var s runnerSummary
	id, st, it, c := sumIDRe.FindStringSubmatch(out), sumStatus.FindStringSubmatch(out), sumIters.FindStringSubmatch(out), sumCosts.FindStringSubmatch(out)
	if id == nil || st == nil || it == nil || c == nil {
		return s, errors.New("summary lacks experiment, status, iterations or final cost")
	}
	n, err := strconv.Atoi(it[1])
	if err != nil {
		return s, err
	}
	s = runnerSummary{id: id[1], status: st[1], iterations: n, finalCost: c[1], bestCost: c[2], agentCosts: map[string]string{}}
	for _, m := range sumAgentRe.FindAllStringSubmatch(out, -1) {
		s.agentCosts[m[1]] = m[2]
	}
	return s, nil
}

func TestParallelRunnersWithSeparatePersister(t *testing.T) {
	b := binaries(t, "persister", "runner", "results")
	dir := t.TempDir()
	db := filepath.Join(dir, "all.db")
	p := startPersister(t, b["persister"], db)

	type job struct {
		file    string
		seed    int64
		maxIter int // 0: the file's
	}
	var jobs []job
	for i := range 4 {
		jobs = append(jobs, job{testdataPath(t, "experiments/exp1.yaml"), int64(100 + i), 0})
		jobs = append(jobs, job{testdataPath(t, "experiments/exp2.yaml"), int64(200 + i), 3})
	}
	type result struct {
		sum            runnerSummary
		stdout, stderr string
		err            error
	}
	results := make([]result, len(jobs))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			args := []string{"run", j.file, "--quiet", "--seed", fmt.Sprint(j.seed)}
			if j.maxIter > 0 {
				args = append(args, "--max-iterations", fmt.Sprint(j.maxIter))
			}
			cmd := exec.CommandContext(ctx, b["runner"], args...)
			cmd.Dir = dir // a stray output section would land here, not in the checkout
			cmd.Env = childEnv("SIMCASH_NATS_URL=" + p.url)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			r := result{err: cmd.Run(), stdout: stdout.String(), stderr: stderr.String()}
			if r.err == nil {
				r.sum, r.err = parseSummary(r.stdout)
			}
			results[i] = r
		})
	}
	wg.Wait()
	ids := map[string]int{} // experiment id -> job index
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("runner %d (%s seed %d): %v\nstdout:\n%s\nstderr:\n%s", i, filepath.Base(jobs[i].file), jobs[i].seed, r.err, r.stdout, r.stderr)
		}
		if r.sum.status != schema.StatusCompleted || !strings.Contains(r.stdout, "published to "+p.url) {
			t.Errorf("runner %d: status %q; want completed, records published to %s:\n%s", i, r.sum.status, p.url, r.stdout)
		}
		if _, dup := ids[r.sum.id]; dup {
			t.Fatalf("two runners printed experiment id %s", r.sum.id)
		}
		ids[r.sum.id] = i
	}
	if entries, err := filepath.Glob(filepath.Join(dir, "results")); err != nil || len(entries) != 0 {
		t.Errorf("runners with SIMCASH_NATS_URL created %v: they must only publish", entries)
	}

	// The runners returned once the stream acked their records; wait until
	// the persister has committed (and acked) all of them.
	waitConsumed(t, p.url, db)

	// While the persister holds the file (DuckDB allows no reader beside
	// it), reads go to the persister over NATS.
	t.Run("persister answers queries over NATS", func(t *testing.T) {
		if _, err := store.OpenReadOnly(t.Context(), db); !store.IsLocked(err) {
			t.Fatalf("opening the database beside the persister: %v, want a lock error", err)
		}
		r, err := bus.OpenRemote(t.Context(), db, bus.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		list, err := r.List(t.Context(), store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkAllCompleted(t, ids, list)
	})
	t.Run("results list while the persister holds the database", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), b["results"], "list", "--db", db, "--format", "json")
		cmd.Env = childEnv()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("results list: %v\n%s", err, stderr.String())
		}
		var list []store.ExperimentSummary
		if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
			t.Fatalf("results list --format json: %v\n%s", err, stdout.String())
		}
		checkAllCompleted(t, ids, list)
	})

	p.stop(t)
	if _, err := os.Stat(bus.InfoFile(db)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind after the persister stopped (%v): results would ask a dead persister", bus.InfoFile(db), err)
	}

	st := openStore(t, db)
	list, err := st.List(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(jobs) {
		t.Fatalf("database holds %d experiments, %d runners ran", len(list), len(jobs))
	}
	counts, err := st.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if counts[schema.TableDeadLetters] != 0 {
		t.Errorf("%d dead letters", counts[schema.TableDeadLetters])
	}
	var totalIters int64
	for _, e := range list {
		i, ok := ids[e.ExperimentID]
		if !ok {
			t.Errorf("database holds experiment %s that no runner printed", e.ExperimentID)
			continue
		}
		want, j := results[i].sum, jobs[i]
		d, err := st.Show(t.Context(), e.ExperimentID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != schema.StatusCompleted || d.CompletedAt == nil || d.MasterSeed != j.seed {
			t.Errorf("%s: status %q completed_at %v seed %d; want completed, seed %d", d.ExperimentID, d.Status, d.CompletedAt, d.MasterSeed, j.seed)
		}
		if d.NumIterations != want.iterations || d.FinalCost == nil || dollars(*d.FinalCost) != want.finalCost ||
			d.BestCost == nil || dollars(*d.BestCost) != want.bestCost {
			t.Errorf("%s: stored %d iterations, final %s best %s; the runner printed %d, %s, %s", d.ExperimentID,
				d.NumIterations, dollarsOrNil(d.FinalCost), dollarsOrNil(d.BestCost), want.iterations, want.finalCost, want.bestCost)
		}
		if len(d.AgentFinalCosts) != len(want.agentCosts) {
			t.Errorf("%s: agent costs %v, printed %v", d.ExperimentID, d.AgentFinalCosts, want.agentCosts)
		}
		for a, c := range d.AgentFinalCosts {
			if dollars(c) != want.agentCosts[a] {
				t.Errorf("%s: %s final cost %s, printed %s", d.ExperimentID, a, dollars(c), want.agentCosts[a])
			}
		}

		iters, err := st.Iterations(t.Context(), e.ExperimentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(iters) != want.iterations {
			t.Errorf("%s: %d iteration rows, the runner printed %d iterations", d.ExperimentID, len(iters), want.iterations)
		}
		for k, it := range iters {
			if it.Iteration != k+1 {
				t.Errorf("%s: iteration rows %v, want 1..%d once each", d.ExperimentID, iterNumbers(iters), want.iterations)
				break
			}
		}
		totalIters += int64(len(iters))

		events, err := st.Events(t.Context(), e.ExperimentID, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for k, ev := range events {
			if ev.Seq != int64(k+1) {
				t.Errorf("%s: event %d has seq %d: events missing or repeated", d.ExperimentID, k+1, ev.Seq)
				break
			}
		}
		if n := len(events); n == 0 || events[0].EventType != "experiment_start" || events[n-1].EventType != "experiment_end" {
			t.Errorf("%s: %d events, want experiment_start ... experiment_end", d.ExperimentID, n)
		}
		evals, err := st.Evaluations(t.Context(), e.ExperimentID, store.EvalFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evals) == 0 {
			t.Errorf("%s: no policy evaluations", d.ExperimentID)
		}
	}
	if counts[schema.TableIterations] != totalIters || counts[schema.TableCompletions] != int64(len(jobs)) {
		t.Errorf("tables hold %d iterations and %d completions; want %d and %d", counts[schema.TableIterations], counts[schema.TableCompletions], totalIters, len(jobs))
	}
}

// waitConsumed waits until the persister of db has acked every record in
// the stream: it acks after the batch's commit.
func waitConsumed(t *testing.T, url, db string) {
	t.Helper()
	nc, err := bus.Connect(t.Context(), bus.Config{URL: url, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := bus.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	durable := "persister-" + bus.DBToken(db)
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		var pending, ackPending uint64
		c, err := js.Consumer(t.Context(), bus.StreamName, durable)
		if err == nil {
			info, ierr := c.Info(t.Context())
			if err = ierr; err == nil {
				pending, ackPending = info.NumPending, uint64(info.NumAckPending)
				if pending == 0 && ackPending == 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("persister consumer %s after 2m: %d pending, %d unacked (%v)", durable, pending, ackPending, err)
		}
	}
}

// checkAllCompleted checks that list shows exactly the experiments in ids,
// each completed.
func checkAllCompleted(t *testing.T, ids map[string]int, list []store.ExperimentSummary) {
	t.Helper()
	if len(list) != len(ids) {
		t.Errorf("listed %d experiments, %d runners ran", len(list), len(ids))
	}
	for _, e := range list {
		if _, ok := ids[e.ExperimentID]; !ok {
			t.Errorf("listed unknown experiment %s", e.ExperimentID)
		}
		if e.Status != schema.StatusCompleted || e.CompletedAt == nil || e.FinalCost == nil {
			t.Errorf("%s: status %q, completed_at %v, final cost %v; want completed", e.ExperimentID, e.Status, e.CompletedAt, e.FinalCost)
		}
	}
}

func dollarsOrNil(c *int64) string {
	if c == nil {
		return "null"
	}
	return dollars(*c)
}

func iterNumbers(rows []store.IterationRow) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r.Iteration
	}
	return out
}
