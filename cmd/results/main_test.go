package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"simcash/schema"
	"simcash/store"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The fixtures' times are in the past: their running experiments stay
// running unless a test asks for a short lost-after.
func init() { os.Setenv("SIMCASH_LOST_AFTER", "1000000h") }

// testDB writes two experiments into a fresh database and returns its path:
// exp1-a completed after 2 iterations, exp2-b still running after 1.
func testDB(t *testing.T) string {
	t.Helper()
	rs := []schema.Record{
		&schema.ExperimentStarted{ExpID: "exp1-a", Name: "exp1", Type: "generic", Config: json.RawMessage(`{"master_seed":7}`),
			MasterSeed: 7, Scenario: "exp1.yaml", Model: "builtin:search", StartedAt: t0, ProgramVersion: "v", Host: "h", ConfigHash: "c"},
		&schema.ExperimentStarted{ExpID: "exp2-b", Name: "exp2", Type: "generic", Config: json.RawMessage(`{"master_seed":8}`),
			MasterSeed: 8, Scenario: "exp2.yaml", Model: "openai:gpt", StartedAt: t0.Add(time.Hour), ProgramVersion: "v", Host: "h", ConfigHash: "d"},
		&schema.Iteration{ExpID: "exp1-a", Iteration: 1, TotalCost: 250000, AgentCosts: map[string]int64{"A": 100000, "B": 150000},
			Policies: json.RawMessage(`{"A":{}}`), AcceptedChanges: map[string]bool{"A": true, "B": false}, Timestamp: t0},
		&schema.Iteration{ExpID: "exp1-a", Iteration: 2, TotalCost: 123456, AgentCosts: map[string]int64{"A": 23456, "B": 100000},
			Policies: json.RawMessage(`{"A":{}}`), AcceptedChanges: map[string]bool{"A": false, "B": false}, Timestamp: t0},
		&schema.Iteration{ExpID: "exp2-b", Iteration: 1, TotalCost: 5, AgentCosts: map[string]int64{"A": 5}, Timestamp: t0},
		&schema.PolicyEvaluation{ExpID: "exp1-a", Iteration: 1, Agent: "A", OldCost: 100000, NewCost: 90000, Delta: 10000,
			Accepted: true, Reason: "better", NumSamples: 10, Timestamp: t0},
		&schema.PolicyEvaluation{ExpID: "exp1-a", Iteration: 1, Agent: "B", OldCost: 150000, NewCost: 160000, Delta: -10000,
			Reason: "worse", NumSamples: 10, Timestamp: t0},
		&schema.Event{ExpID: "exp1-a", Seq: 1, Iteration: 1, EventType: "iteration_start", Data: json.RawMessage(`{"i":1}`), Timestamp: t0},
		&schema.Event{ExpID: "exp1-a", Seq: 2, Iteration: 1, EventType: "llm_interaction", Data: json.RawMessage(`{"model":"m"}`), Timestamp: t0},
		&schema.ExperimentCompleted{ExpID: "exp1-a", CompletedAt: t0.Add(time.Minute), Status: "completed", Converged: true,
			ConvergenceReason: "stability", NumIterations: 2, FinalCost: 123456, BestCost: 123400,
			FinalPolicies:   json.RawMessage(`{"A":{"parameters":{"initial_liquidity_fraction":0.0}}}`),
			AgentFinalCosts: map[string]int64{"A": 23456, "B": 100000}, DurationSeconds: 60},
	}
	return writeDB(t, "all.db", rs)
}

// writeDB stores rs in a fresh database named name and returns its path.
func writeDB(t *testing.T, name string, rs []schema.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	s, err := store.Open(context.Background(), path, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var msgs []store.Message
	for _, r := range rs {
		b, err := schema.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, store.Message{Subject: schema.Subject(r), Data: b})
	}
	res, err := s.WriteBatch(context.Background(), msgs)
	if err != nil || res.DeadLetters > 0 {
		t.Fatalf("write: %v, %d dead letters", err, res.DeadLetters)
	}
	return path
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

func TestListJSONShape(t *testing.T) {
	db := testDB(t)
	out, errOut, code := runCmd(t, "list", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	if len(list) != 2 {
		t.Fatalf("got %d experiments, want 2", len(list))
	}
	for _, k := range []string{"experiment_id", "experiment_name", "status", "num_iterations", "converged",
		"convergence_reason", "final_cost", "best_cost", "started_at", "completed_at"} {
		for _, e := range list {
			if _, ok := e[k]; !ok {
				t.Errorf("experiment %v has no %q", e["experiment_id"], k)
			}
		}
	}
	running, done := list[0], list[1] // newest first
	want := map[string]any{"experiment_id": "exp1-a", "experiment_name": "exp1", "status": "completed",
		"num_iterations": 2.0, "converged": true, "convergence_reason": "stability", "final_cost": 123456.0,
		"best_cost": 123400.0, "started_at": "2026-11-25T12:00:00Z", "completed_at": "2026-11-25T12:01:00Z"}
	for k, v := range want {
		if done[k] != v {
			t.Errorf("completed experiment %s = %#v, want %#v", k, done[k], v)
		}
	}
	if running["status"] != "running" || running["final_cost"] != nil || running["completed_at"] != nil || running["num_iterations"] != 1.0 {
		t.Errorf("running experiment = %v", running)
	}
}

func TestOutputs(t *testing.T) {
	db := testDB(t)
	tests := []struct {
		args []string
		want []string // substrings of stdout
		not  []string
	}{
		{[]string{"list"}, []string{"ID", "exp1-a", "completed", "$1,234.56", "$1,234.00", "yes (stability)", "2026-11-25 12:00:00", "exp2-b", "running"}, nil},
		{[]string{"list", "--status", "running"}, []string{"exp2-b"}, []string{"exp1-a"}},
		{[]string{"list", "--name", "exp1", "--format", "csv"}, []string{"experiment_id,experiment_name", "exp1-a,exp1,completed,2,true,stability,123456,123400,"}, []string{"exp2-b"}},
		{[]string{"list", "--sort", "started_at", "--limit", "1"}, []string{"exp1-a", "first 1 shown"}, []string{"exp2-b"}},
		{[]string{"list", "--limit", "2"}, []string{"exp1-a", "exp2-b"}, []string{"shown"}},
		{[]string{"show", "exp1-a"}, []string{"status:", "completed", "final cost:", "$1,234.56", "final cost [B]:", "$1,000.00", "Final policies:", "initial_liquidity_fraction", "Config:", "master_seed"}, nil},
		{[]string{"show", "exp1-a", "--format", "json"}, []string{`"config": {`, `"final_policies": {`, `"agent_final_costs"`}, nil},
		{[]string{"show", "exp1-a", "--format", "csv"}, []string{"field,value", "final_cost_cents,123456"}, nil},
		{[]string{"iterations", "exp1-a"}, []string{"ITER", "TOTAL", "A", "B", "$2,500.00", "$1,000.00", "$234.56"}, nil},
		{[]string{"iterations", "exp1-a", "--format", "csv"}, []string{"iteration,total_cost_cents,cost_cents[A],cost_cents[B],accepted", "1,250000,100000,150000,A,"}, nil},
		{[]string{"iterations", "exp1-a", "--format", "json"}, []string{`"agent_costs": {`, `"total_cost": 123456`}, nil},
		{[]string{"events", "exp1-a"}, []string{"iteration_start", "llm_interaction", `{"model":"m"}`}, nil},
		{[]string{"events", "exp1-a", "--type", "llm_interaction"}, []string{"llm_interaction"}, []string{"iteration_start"}},
		{[]string{"evaluations", "exp1-a"}, []string{"A", "B", "$100.00", "-$100.00", "yes", "no", "worse"}, nil},
		{[]string{"evaluations", "exp1-a", "--agent", "B", "--format", "csv"}, []string{"1,B,150000,160000,-10000,false,worse,10"}, []string{"better"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCmd(t, append(tt.args, "--db", db)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q:\n%s", n, out)
				}
			}
			if strings.Contains(strings.Join(tt.args, " "), "csv") {
				if _, err := csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil {
					t.Errorf("invalid CSV: %v", err)
				}
			}
		})
	}
}

func TestUserErrors(t *testing.T) {
	db := testDB(t)
	missing := filepath.Join(t.TempDir(), "nope.db")
	notDB := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notDB, []byte("not a database, just some words in a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"show", "nope", "--db", db}, "experiment not found"},
		{[]string{"iterations", "nope", "--db", db}, "experiment not found"},
		{[]string{"events", "nope", "--db", db}, "experiment not found"},
		{[]string{"evaluations", "nope", "--db", db}, "experiment not found"},
		{[]string{"list", "--db", missing}, "no results database at"},
		{[]string{"show", "exp1-a", "--db", missing}, "no results database at"},
		{[]string{"list", "--db", notDB}, "not a simcash results database"},
		{[]string{"list", "--db", db, "--format", "xml"}, "unknown --format"},
		{[]string{"list", "--db", db, "--status", "done"}, "unknown --status"},
		{[]string{"list", "--db", db, "--sort", "cost"}, "unknown --sort"},
		{[]string{"list", "--db", db, "--limit", "-1"}, "--limit"},
		{[]string{"list", "--db", db, "--limit", "many"}, "invalid argument"},
		{[]string{"list", "--db", db, "--bogus"}, "unknown flag"},
		{[]string{"show", "--db", db}, "show takes 1 argument"},
		{[]string{"show", "a", "b", "--db", db}, "show takes 1 argument"},
		{[]string{"events", "exp1-a", "--db", db, "--type", "a.b"}, "--type"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCmd(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errOut)
			}
			if !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("stderr = %q, want one line containing %q", errOut, tt.want)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
}

func TestDBFromEnvironment(t *testing.T) {
	db := testDB(t)
	t.Setenv("SIMCASH_DB", db)
	out, errOut, code := runCmd(t, "list", "--format", "json")
	if code != 0 || !strings.Contains(out, "exp1-a") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestDollars(t *testing.T) {
	tests := map[int64]string{
		0: "$0.00", 5: "$0.05", 100: "$1.00", 123456: "$1,234.56", -123456: "-$1,234.56",
		100000000: "$1,000,000.00", -1: "-$0.01",
		math.MinInt64: "-$92,233,720,368,547,758.08", math.MaxInt64: "$92,233,720,368,547,758.07",
	}
	for c, want := range tests {
		if got := dollars(c); got != want {
			t.Errorf("dollars(%d) = %q, want %q", c, got, want)
		}
	}
}

const holdEnv = "SIMCASH_RESULTS_TEST_HOLD"

// TestHelperHoldDB is not a test: TestLockedFallsBackToRemote runs the test
// binary with it to hold the database open for writing, as a persister does.
func TestHelperHoldDB(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := store.Open(context.Background(), path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

// fakeReader stands in for the persister's remote reader.
type fakeReader struct{ store.Reader }

func (fakeReader) List(context.Context, store.ListOptions) ([]store.ExperimentSummary, error) {
	return []store.ExperimentSummary{{ExperimentID: "remote-1", Status: "running"}}, nil
}

func TestLockedFallsBackToRemote(t *testing.T) {
	db := testDB(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDB$")
	cmd.Env = append(os.Environ(), holdEnv+"="+db)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	ready := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(stdout).ReadString('\n'); ready <- l }()
	select {
	case l := <-ready:
		if l != "ready\n" {
			t.Fatalf("helper said %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not open the database within 30s")
	}

	var asked string
	openRemoteFunc = func(path string) (store.Reader, error) { asked = path; return fakeReader{}, nil }
	defer func() { openRemoteFunc = openRemote }()
	out, errOut, code := runCmd(t, "list", "--db", db, "--format", "json")
	if code != 0 || !strings.Contains(out, "remote-1") || asked != db {
		t.Errorf("with remote: exit %d, stdout %q, stderr %q, asked for %q", code, out, errOut, asked)
	}
}
