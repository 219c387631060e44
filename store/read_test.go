package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"simcash/schema"
)

// fixture stores three experiments: e-old (completed), e-mid (failed),
// e-new (running) and returns the store.
func fixture(t *testing.T) *Store {
	t.Helper()
	s := openTemp(t)
	var rs []schema.Record
	rs = append(rs, experiment("e-old", "exp1", schema.StatusCompleted, 3, t0)...)
	rs = append(rs, experiment("e-mid", "exp2", schema.StatusFailed, 2, t0.Add(time.Hour))...)
	rs = append(rs, experiment("e-new", "exp1", schema.StatusRunning, 4, t0.Add(2*time.Hour))...)
	if _, err := s.WriteBatch(context.Background(), msgs(t, rs)); err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(ss []ExperimentSummary) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ExperimentID)
	}
	return out
}

func TestList(t *testing.T) {
	s := fixture(t)
	tests := []struct {
		opts ListOptions
		want string
	}{
		{ListOptions{}, "[e-new e-mid e-old]"},
		{ListOptions{Sort: "started_at"}, "[e-old e-mid e-new]"},
		{ListOptions{Name: "exp1"}, "[e-new e-old]"},
		{ListOptions{Name: "exp*", Limit: 1}, "[e-new]"},
		{ListOptions{Name: "exp"}, "[]"},
		{ListOptions{Status: "running"}, "[e-new]"},
		{ListOptions{Status: "failed"}, "[e-mid]"},
		{ListOptions{Sort: "-num_iterations"}, "[e-new e-old e-mid]"},
		{ListOptions{Sort: "name"}, "[e-new e-old e-mid]"},
		{ListOptions{Sort: "final_cost"}, "[e-mid e-old e-new]"}, // running has no cost: last
	}
	for _, tt := range tests {
		got, err := s.List(context.Background(), tt.opts)
		if err != nil {
			t.Errorf("List(%+v): %v", tt.opts, err)
			continue
		}
		if g := fmt.Sprint(ids(got)); g != tt.want && !(g == "[]" && tt.want == "[]") {
			t.Errorf("List(%+v) = %s, want %s", tt.opts, g, tt.want)
		}
	}
	for _, bad := range []ListOptions{{Sort: "bogus"}, {Status: "done"}, {Limit: -1}} {
		if _, err := s.List(context.Background(), bad); err == nil {
			t.Errorf("List(%+v) succeeded, want error", bad)
		}
	}
}

func TestListSummaryFields(t *testing.T) {
	s := fixture(t)
	got, err := s.List(context.Background(), ListOptions{Sort: "started_at"})
	if err != nil {
		t.Fatal(err)
	}
	old, running := got[0], got[2]
	if old.Status != "completed" || !old.Converged || old.NumIterations != 3 || *old.FinalCost != 1000 ||
		*old.BestCost != 900 || old.CompletedAt == nil || !old.StartedAt.Equal(t0) || old.ConvergenceReason != "stability" {
		t.Errorf("completed summary = %+v", old)
	}
	if running.Status != "running" || running.NumIterations != 4 || running.FinalCost != nil || running.CompletedAt != nil {
		t.Errorf("running summary = %+v", running)
	}
}

func TestShow(t *testing.T) {
	s := fixture(t)
	d, err := s.Show(context.Background(), "e-old")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(d.Config, &cfg); err != nil || cfg["master_seed"] != 42.0 {
		t.Errorf("config = %s (%v)", d.Config, err)
	}
	if string(d.FinalPolicies) != `{"BANK_A":{"parameters":{"initial_liquidity_fraction":0.0}}}` {
		t.Errorf("final policies = %s", d.FinalPolicies)
	}
	if d.AgentFinalCosts["BANK_B"] != 600 || *d.DurationSeconds != 3.5 || d.ExperimentType != "generic" {
		t.Errorf("detail = %+v", d)
	}
	if _, err := s.Show(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Show(nope) error = %v, want ErrNotFound", err)
	}
}

func TestPerExperimentQueries(t *testing.T) {
	ctx := context.Background()
	s := fixture(t)
	its, err := s.Iterations(ctx, "e-new")
	if err != nil {
		t.Fatal(err)
	}
	if len(its) != 4 || its[0].Iteration != 1 || its[3].TotalCost != 1000 || its[1].AgentCosts["BANK_A"] != 800 ||
		!its[1].AcceptedChanges["BANK_A"] || !its[1].Timestamp.Equal(t0.Add(2*time.Hour+2*time.Second)) {
		t.Errorf("iterations = %+v", its)
	}
	evs, err := s.Events(ctx, "e-new", EventFilter{Type: "iteration_start"})
	if err != nil || len(evs) != 4 || evs[2].Seq != 3 || string(evs[2].Data) != `{"iteration":3}` {
		t.Errorf("events = %+v, %v", evs, err)
	}
	if evs, err := s.Events(ctx, "e-new", EventFilter{Type: "llm_interaction"}); err != nil || len(evs) != 0 {
		t.Errorf("filtered events = %+v, %v", evs, err)
	}
	evals, err := s.Evaluations(ctx, "e-old", EvalFilter{Agent: "BANK_A"})
	if err != nil || len(evals) != 3 || !evals[0].Accepted || evals[0].Delta != 100 || evals[0].Agent != "BANK_A" {
		t.Errorf("evaluations = %+v, %v", evals, err)
	}
	if evals, err := s.Evaluations(ctx, "e-old", EvalFilter{Iteration: 2}); err != nil || len(evals) != 2 {
		t.Errorf("evaluations of iteration 2 = %+v, %v", evals, err)
	}
	for name, f := range map[string]func() error{
		"iterations":  func() error { _, err := s.Iterations(ctx, "nope"); return err },
		"events":      func() error { _, err := s.Events(ctx, "nope", EventFilter{}); return err },
		"evaluations": func() error { _, err := s.Evaluations(ctx, "nope", EvalFilter{}); return err },
	} {
		if err := f(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of unknown experiment: %v, want ErrNotFound", name, err)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	if _, err := OpenReadOnly(ctx, path); err == nil || IsLocked(err) {
		t.Errorf("OpenReadOnly(missing file) = %v, want a not-found error", err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, msgs(t, experiment("e1", "exp1", schema.StatusCompleted, 1, t0))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if l, err := r.List(ctx, ListOptions{}); err != nil || len(l) != 1 {
		t.Errorf("List on read-only store = %v, %v", l, err)
	}
	if _, err := r.WriteBatch(ctx, msgs(t, experiment("e2", "exp1", schema.StatusRunning, 1, t0))); err == nil {
		t.Error("WriteBatch on a read-only store succeeded")
	}
	// Reopening for writing keeps the data and does not migrate twice.
	r.Close()
	w, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if c := counts(t, w); c["schema_migrations"] != int64(len(schema.Migrations)) || c["experiments"] != 1 {
		t.Errorf("counts after reopen = %v", c)
	}
}

func TestOpenReadOnlyRejectsOtherFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("hello, this is not a database file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An empty DuckDB database without our tables.
	empty := filepath.Join(dir, "empty.db")
	s, err := open(ctx, empty, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A database from a newer simcash.
	newer := filepath.Join(dir, "newer.db")
	s, err = Open(ctx, newer, WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (999, now())`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, path := range []string{text, empty, newer} {
		s, err := OpenReadOnly(ctx, path)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrNotResultsDB) {
			t.Errorf("OpenReadOnly(%s) = %v, want ErrNotResultsDB", filepath.Base(path), err)
		}
	}
}

const holdEnv = "SIMCASH_STORE_TEST_HOLD"

// TestHelperHoldDB is not a test: TestIsLocked runs the test binary with it
// to hold a database open for writing in a second process.
func TestHelperHoldDB(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
	s.Close()
	os.Exit(0)
}

func TestIsLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "locked.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDB$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("helper said %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not open the database within 30s")
	}

	for name, open := range map[string]func() (*Store, error){
		"Open":         func() (*Store, error) { return Open(ctx, path) },
		"OpenReadOnly": func() (*Store, error) { return OpenReadOnly(ctx, path) },
	} {
		s, err := open()
		if err == nil {
			s.Close()
			t.Errorf("%s succeeded while another process writes the file", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if !IsLocked(err) {
			t.Errorf("IsLocked(%v) = false, want true", err)
		}
	}
	if IsLocked(errors.New("no such file")) || IsLocked(nil) {
		t.Error("IsLocked is true for an unrelated error")
	}
}

// TestLost: an experiment without a completion that showed no sign of life
// (record or heartbeat) for longer than the lost-after time is lost; a
// heartbeat keeps it running.
func TestLost(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "lost.db"), WithLogger(discardLogger()), WithLostAfter(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := t0.Add(10 * time.Hour)
	s.now = func() time.Time { return now }
	rs := experiment("quiet", "exp1", schema.StatusRunning, 1, t0)
	rs = append(rs, experiment("beating", "exp1", schema.StatusRunning, 1, t0)...)
	rs = append(rs, &schema.Heartbeat{ExpID: "beating", Beat: 1, Iteration: 1, Timestamp: now.Add(-30 * time.Second)})
	rs = append(rs, experiment("done", "exp1", schema.StatusCompleted, 1, t0)...)
	if _, err := s.WriteBatch(ctx, msgs(t, rs)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"quiet": "lost", "beating": "running", "done": "completed"} {
		d, err := s.Show(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != want {
			t.Errorf("%s: status %q, want %q", id, d.Status, want)
		}
	}
	lost, err := s.List(ctx, ListOptions{Status: "lost"})
	if err != nil || len(lost) != 1 || lost[0].ExperimentID != "quiet" {
		t.Errorf("List(lost) = %v, %v", lost, err)
	}
	if beating, _ := s.Show(ctx, "beating"); beating.LastSeen == nil || !beating.LastSeen.Equal(now.Add(-30*time.Second)) {
		t.Errorf("last seen %v, want the heartbeat's time", beating.LastSeen)
	}
}

// TestResumedInterruptedRun: the completion of a resumed run replaces the
// "interrupted" one, a late copy of that one changes nothing, and between
// the two a run that shows life again is running.
func TestResumedInterruptedRun(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	rs := experiment("r", "exp1", schema.StatusRunning, 2, t0)
	stop := &schema.ExperimentCompleted{ExpID: "r", CompletedAt: t0.Add(time.Minute), Status: schema.StatusInterrupted,
		ConvergenceReason: "interrupted", NumIterations: 2, FinalCost: 5, BestCost: 5, AgentFinalCosts: map[string]int64{}}
	if _, err := s.WriteBatch(ctx, msgs(t, append(rs, stop))); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		d, err := s.Show(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		return d.Status
	}
	if st := status(); st != "interrupted" {
		t.Fatalf("status %q, want interrupted", st)
	}
	resumed := &schema.Heartbeat{ExpID: "r", Beat: 9, Iteration: 3, Timestamp: t0.Add(2 * time.Minute)}
	if _, err := s.WriteBatch(ctx, msgs(t, []schema.Record{resumed})); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != "running" {
		t.Fatalf("status %q after the resumed run's heartbeat, want running", st)
	}
	done := &schema.ExperimentCompleted{ExpID: "r", CompletedAt: t0.Add(3 * time.Minute), Status: schema.StatusCompleted,
		ConvergenceReason: "max_iterations", NumIterations: 4, FinalCost: 3, BestCost: 3, AgentFinalCosts: map[string]int64{}}
	if _, err := s.WriteBatch(ctx, msgs(t, []schema.Record{done})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, msgs(t, []schema.Record{stop})); err != nil { // redelivered late
		t.Fatal(err)
	}
	d, err := s.Show(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "completed" || d.NumIterations != 4 || *d.FinalCost != 3 {
		t.Errorf("after the resumed run's completion: %s, %d iterations, final %d", d.Status, d.NumIterations, *d.FinalCost)
	}
}
