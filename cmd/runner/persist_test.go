package main

// Integration tests of `runner run` persistence: each runs the runner
// in-process (execute) with an embedded NATS server and in-process
// persister writing a real DuckDB file in t.TempDir(), then reads the file
// with store.OpenReadOnly after the runner returned.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"simcash/experiment"
	"simcash/schema"
	"simcash/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// bins holds the commands built for tests that run them as processes: once
// per test binary, because linking them takes seconds.
var bins struct {
	mu    sync.Mutex
	dir   string
	built map[string]bool
}

// binaries builds ./cmd/NAME for each name (those not built yet, in one go
// build) and returns their paths by name.
func binaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	bins.mu.Lock()
	defer bins.mu.Unlock()
	if bins.dir == "" {
		dir, err := os.MkdirTemp("", "simcash-cmd-runner-test-")
		if err != nil {
			t.Fatal(err)
		}
		bins.dir, bins.built = dir, map[string]bool{}
	}
	var pkgs []string
	for _, n := range names {
		if !bins.built[n] {
			pkgs = append(pkgs, "./cmd/"+n)
		}
	}
	if len(pkgs) > 0 {
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Fatalf("these tests build the commands with the go tool: %v", err)
		}
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, append([]string{"build", "-o", bins.dir + string(filepath.Separator)}, pkgs...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
		}
		for _, n := range names {
			bins.built[n] = true
		}
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = filepath.Join(bins.dir, n)
	}
	return out
}

// testdataPath is the absolute path of a file under the module's testdata.
// Call it before t.Chdir.
func testdataPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// runRunner runs `runner args...` in-process without SIMCASH_NATS_URL, so
// records go through an embedded NATS server to an in-process persister.
func runRunner(t *testing.T, ctx context.Context, args ...string) int {
	t.Helper()
	t.Setenv("SIMCASH_NATS_URL", "")
	return execute(ctx, args)
}

// mustRun is runRunner that fails the test unless the runner exits 0.
func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if code := runRunner(t, t.Context(), args...); code != 0 {
		t.Fatalf("runner %s: exit status %d, want 0", strings.Join(args, " "), code)
	}
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.OpenReadOnly(t.Context(), path)
	if err != nil {
		t.Fatalf("open the runner's database: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// onlyExperiment returns the single experiment in st.
func onlyExperiment(t *testing.T, st *store.Store) *store.ExperimentDetail {
	t.Helper()
	list, err := st.List(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("database holds %d experiments, want 1: %+v", len(list), list)
	}
	d, err := st.Show(t.Context(), list[0].ExperimentID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writeExperiment writes the experiment file base into dir with each
// old->new pair of edits replaced (each old must occur exactly once), and
// returns its path.
func writeExperiment(t *testing.T, dir, base string, edits ...string) string {
	t.Helper()
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(s, edits[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once", base, edits[i], n)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	p := filepath.Join(dir, "experiment.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noOutputExperiment writes testdata/experiments/persist/no_output.yaml to
// dir with its scenario path made absolute, plus the given edits.
func noOutputExperiment(t *testing.T, dir string, edits ...string) string {
	t.Helper()
	scn := testdataPath(t, "scenarios/exp1.yaml")
	edits = append([]string{"scenario: ../../scenarios/exp1.yaml", fmt.Sprintf("scenario: %q", scn)}, edits...)
	return writeExperiment(t, dir, testdataPath(t, "experiments/persist/no_output.yaml"), edits...)
}

// referenceRun runs the experiment at path with the same overrides the
// command line would apply, into memory, as the expected result.
func referenceRun(t *testing.T, path string, o experiment.Overrides) (*experiment.Outcome, []schema.Record) {
	t.Helper()
	cfg, scn, err := loadExperiment(path, false, &o)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := newOptimizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mem := &experiment.Memory{}
	r := &experiment.Runner{Config: cfg, Scenario: scn, Optimizer: opt, Sink: mem, Version: version}
	out, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("reference run of %s: %v", path, err)
	}
	return out, mem.Records
}

func records[T schema.Record](rs []schema.Record) []T {
	var out []T
	for _, r := range rs {
		if v, ok := r.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// columnTypes returns the distinct DuckDB types of expr over table, read
// from the file directly (the store reader scans into Go types, which
// would hide a DOUBLE column).
func columnTypes(t *testing.T, db, table, expr string) []string {
	t.Helper()
	conn, err := sql.Open("duckdb", db+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(t.Context(), fmt.Sprintf("SELECT DISTINCT %s FROM %s ORDER BY 1", expr, table))
	if err != nil {
		t.Fatalf("%s of %s: %v", expr, table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertIntegerColumns checks that each expression over table is stored as
// an integer type (int64 cents), for every row.
func assertIntegerColumns(t *testing.T, db, table string, exprs ...string) {
	t.Helper()
	for _, e := range exprs {
		types := columnTypes(t, db, table, e)
		if len(types) == 0 {
			t.Errorf("%s.%s: no rows", table, e)
		}
		for _, ty := range types {
			if ty != "BIGINT" && ty != "UBIGINT" {
				t.Errorf("%s.%s is stored as %s, want an integer (int64 cents)", table, e, ty)
			}
		}
	}
}

func jsonEqual(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: stored JSON %q: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: expected JSON %q: %v", what, want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// dbFiles lists the *.db files under root, outside the embedded bus's
// stream directories (.NAME.db.nats, kept next to the database so that
// records a crash left uncommitted are committed by the next run).
func dbFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".db.nats") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".db") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunnerCreatesRepositoryWhenOutputConfigured(t *testing.T) {
	exp := testdataPath(t, "experiments/exp1.yaml") // output: results/exp1.db
	dir := t.TempDir()
	t.Chdir(dir)
	mustRun(t, "run", exp, "--quiet")

	db := filepath.Join(dir, "results", "exp1.db")
	st := openStore(t, db)
	d := onlyExperiment(t, st)
	if d.ExperimentName != "exp1" || d.Status != schema.StatusCompleted {
		t.Errorf("experiment %s %q status %q, want exp1 completed", d.ExperimentID, d.ExperimentName, d.Status)
	}
	counts, err := st.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if counts[schema.TableIterations] != int64(d.NumIterations) || d.NumIterations == 0 {
		t.Errorf("%d iteration rows, completion says %d iterations", counts[schema.TableIterations], d.NumIterations)
	}
	for _, table := range []string{schema.TableEvents, schema.TableEvaluations, schema.TableCompletions} {
		if counts[table] == 0 {
			t.Errorf("table %s is empty", table)
		}
	}
	if n := counts[schema.TableDeadLetters]; n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

func TestRunnerNoRepositoryWhenOutputNotConfigured(t *testing.T) {
	cases := []struct {
		name  string
		edits []string // appended to no_output.yaml
		args  []string
	}{
		{name: "no output section"},
		{name: "output section with --dry-run",
			edits: []string{"optimized_agents: [BANK_A, BANK_B]\n", "optimized_agents: [BANK_A, BANK_B]\noutput:\n  directory: results\n  database: dry.db\n"},
			args:  []string{"--dry-run"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expDir, cwd := t.TempDir(), t.TempDir()
			exp := noOutputExperiment(t, expDir, tc.edits...)
			t.Chdir(cwd)
			mustRun(t, append([]string{"run", exp, "--quiet"}, tc.args...)...)

			for dir, want := range map[string][]string{cwd: nil, expDir: {"experiment.yaml"}} {
				entries, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				if !slices.Equal(names, want) {
					t.Errorf("%s holds %v after the run, want %v: nothing may be persisted", dir, names, want)
				}
			}
		})
	}
}

func TestDatabaseCreatedInOutputDirectory(t *testing.T) {
	// root/cwd is the working directory, root/exp holds the experiment.
	cases := []struct {
		name   string
		output func(root string) string // the output section
		args   func(root string) []string
		want   func(root string) string // where the database must be
	}{
		{
			name:   "relative directory is under the working directory",
			output: func(string) string { return "  directory: out/nested\n  database: custom.db\n" },
			want:   func(root string) string { return filepath.Join(root, "cwd", "out", "nested", "custom.db") },
		},
		{
			name: "absolute directory",
			output: func(root string) string {
				return fmt.Sprintf("  directory: %q\n  database: abs.db\n", filepath.Join(root, "abs", "dir"))
			},
			want: func(root string) string { return filepath.Join(root, "abs", "dir", "abs.db") },
		},
		{
			name: "default database name",
			output: func(root string) string {
				return fmt.Sprintf("  directory: %q\n", filepath.Join(root, "defaults"))
			},
			want: func(root string) string { return filepath.Join(root, "defaults", "experiments.db") },
		},
		{
			name: "absolute database path stands alone",
			output: func(root string) string {
				return fmt.Sprintf("  directory: %q\n  database: %q\n", filepath.Join(root, "ignored"), filepath.Join(root, "direct", "b.db"))
			},
			want: func(root string) string { return filepath.Join(root, "direct", "b.db") },
		},
		{
			name: "--db overrides the output section",
			output: func(root string) string {
				return fmt.Sprintf("  directory: %q\n  database: x.db\n", filepath.Join(root, "unused"))
			},
			args: func(root string) []string { return []string{"--db", filepath.Join(root, "flag", "f.db")} },
			want: func(root string) string { return filepath.Join(root, "flag", "f.db") },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cwd, expDir := filepath.Join(root, "cwd"), filepath.Join(root, "exp")
			for _, d := range []string{cwd, expDir} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			exp := noOutputExperiment(t, expDir, "optimized_agents: [BANK_A, BANK_B]\n",
				"optimized_agents: [BANK_A, BANK_B]\noutput:\n"+tc.output(root))
			t.Chdir(cwd)
			args := []string{"run", exp, "--quiet", "--max-iterations", "3"}
			if tc.args != nil {
				args = append(args, tc.args(root)...)
			}
			mustRun(t, args...)

			want := tc.want(root)
			if got := dbFiles(t, root); !slices.Equal(got, []string{want}) {
				t.Fatalf("database files %v, want only %s", got, want)
			}
			d := onlyExperiment(t, openStore(t, want))
			if d.ExperimentName != "exp1_no_output" || d.Status != schema.StatusCompleted || d.NumIterations != 3 {
				t.Errorf("stored %q status %q with %d iterations, want exp1_no_output completed with 3", d.ExperimentName, d.Status, d.NumIterations)
			}
		})
	}
}

// chatResponse is an OpenAI chat-completions answer with usage.
func chatResponse(content string, prompt, completion int) map[string]any {
	return map[string]any{
		"id": "chatcmpl-test", "object": "chat.completion", "created": time.Now().Unix(), "model": "test",
		"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content}}},
		"usage": map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
	}
}

// policyAnswer is a model's answer holding a policy that sets
// initial_liquidity_fraction to f.
func policyAnswer(f float64) string {
	return fmt.Sprintf("Commit less liquidity.\n```json\n"+
		`{"version":"2.0","policy_id":"llm","parameters":{"initial_liquidity_fraction":%g},`+
		`"payment_tree":{"type":"action","node_id":"release","action":"Release","parameters":{}},`+
		`"bank_tree":{"type":"action","node_id":"bank_noop","action":"NoAction","parameters":{}}}`+
		"\n```\n", f)
}

// fakeLLM is an OpenAI-compatible server: answer(n) gives the n-th (0-based)
// request's content and token usage.
type fakeLLM struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(n int) (content string, prompt, completion int)

	mu       sync.Mutex
	requests int
	models   []string
	messages [][]string // each request's message contents, in order
}

func newFakeLLM(t *testing.T, answer func(n int) (string, int, int)) *fakeLLM {
	f := &fakeLLM{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.t.Errorf("LLM server got %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		f.t.Errorf("LLM server: bad request body (%v)", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	n := f.requests
	f.requests++
	f.models = append(f.models, req.Model)
	var contents []string
	for _, m := range req.Messages {
		contents = append(contents, m.Content)
	}
	f.messages = append(f.messages, contents)
	f.mu.Unlock()
	content, prompt, completion := f.answer(n)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(chatResponse(content, prompt, completion))
}

func (f *fakeLLM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// requestedModels returns the model named in each request.
func (f *fakeLLM) requestedModels() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.models)
}

// llmExperiment writes no_output.yaml with llm.model openai:test served by
// baseURL.
func llmExperiment(t *testing.T, dir, baseURL string) string {
	t.Helper()
	t.Setenv("OPENAI_API_KEY", "")
	return noOutputExperiment(t, dir, "model: builtin:search", fmt.Sprintf("model: openai:test\n  base_url: %q", baseURL))
}

func TestExperimentRecordSavedAtStart(t *testing.T) {
	t.Run("completed run", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "all.db")
		before := time.Now().Truncate(time.Microsecond)
		mustRun(t, "run", testdataPath(t, "experiments/exp1.yaml"), "--db", db, "--quiet")
		after := time.Now().Add(time.Microsecond)

		st := openStore(t, db)
		d := onlyExperiment(t, st)
		if d.StartedAt.Before(before) || d.StartedAt.After(after) {
			t.Errorf("started_at %s outside the run [%s, %s]", d.StartedAt, before.UTC(), after.UTC())
		}
		iters, err := st.Iterations(t.Context(), d.ExperimentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(iters) == 0 || iters[0].Timestamp.Before(d.StartedAt) {
			t.Errorf("first iteration %+v is not after the start %s", iters, d.StartedAt)
		}
		events, err := st.Events(t.Context(), d.ExperimentID, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].Seq != 1 || events[0].EventType != "experiment_start" {
			t.Fatalf("first event %+v, want experiment_start with seq 1", events[:min(1, len(events))])
		}
	})

	t.Run("run interrupted before its first iteration is recorded", func(t *testing.T) {
		// The model server interrupts the run (as Ctrl-C would) at the first
		// proposal, before iteration 1 is published: the experiment must be
		// in the database all the same, recorded as interrupted.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client hanging up.
			_, _ = io.Copy(io.Discard, r.Body)
			cancel()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second): // bound only: the client should hang up at once
			}
		}))
		t.Cleanup(srv.Close)
		dir := t.TempDir()
		exp := llmExperiment(t, dir, srv.URL+"/v1/")
		db := filepath.Join(dir, "all.db")
		if code := runRunner(t, ctx, "run", exp, "--db", db, "--quiet"); code == 0 {
			t.Errorf("interrupted run exited 0")
		}

		st := openStore(t, db)
		d := onlyExperiment(t, st)
		if d.ExperimentName != "exp1_no_output" || d.ExperimentType != "generic" || d.StartedAt.IsZero() {
			t.Errorf("start record %q type %q started %s", d.ExperimentName, d.ExperimentType, d.StartedAt)
		}
		if d.Status != schema.StatusInterrupted {
			t.Errorf("status %q, want %q", d.Status, schema.StatusInterrupted)
		}
		iters, err := st.Iterations(t.Context(), d.ExperimentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(iters) != 0 {
			t.Errorf("%d iterations stored, want none (the run stopped inside iteration 1)", len(iters))
		}
	})
}

func TestExperimentRecordHasMetadata(t *testing.T) {
	exp := testdataPath(t, "experiments/exp1.yaml")
	db := filepath.Join(t.TempDir(), "all.db")
	mustRun(t, "run", exp, "--db", db, "--seed", "1234", "--max-iterations", "4", "--quiet")

	d := onlyExperiment(t, openStore(t, db))
	if !regexp.MustCompile(`^exp1-\d{8}-\d{6}-[0-9a-f]{6}$`).MatchString(d.ExperimentID) {
		t.Errorf("experiment id %q, want exp1-YYYYMMDD-HHMMSS-xxxxxx", d.ExperimentID)
	}
	host, _ := os.Hostname()
	for _, c := range []struct{ field, got, want string }{
		{"experiment_type", d.ExperimentType, "generic"},
		{"experiment_name", d.ExperimentName, "exp1"},
		{"model", d.Model, "builtin:search"},
		{"scenario", d.Scenario, "../scenarios/exp1.yaml"},
		{"program_version", d.ProgramVersion, version},
		{"host", d.Host, host},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if d.MasterSeed != 1234 {
		t.Errorf("master_seed = %d, want 1234 (--seed)", d.MasterSeed)
	}

	var cfg struct {
		Name        string `json:"name"`
		MasterSeed  *int64 `json:"master_seed"`
		Scenario    string `json:"scenario"`
		Evaluation  struct{ Mode string }
		Convergence struct {
			MaxIterations int `json:"max_iterations"`
		}
		LLM             struct{ Model string }
		OptimizedAgents []string `json:"optimized_agents"`
	}
	if err := json.Unmarshal(d.Config, &cfg); err != nil {
		t.Fatalf("config %s: %v", d.Config, err)
	}
	if cfg.MasterSeed == nil || *cfg.MasterSeed != 1234 {
		t.Errorf("config master_seed %v, want 1234: %s", cfg.MasterSeed, d.Config)
	}
	if cfg.Name != "exp1" || cfg.Evaluation.Mode != experiment.ModeDeterministic || cfg.Convergence.MaxIterations != 4 ||
		cfg.LLM.Model != "builtin:search" || !slices.Equal(cfg.OptimizedAgents, []string{"BANK_A", "BANK_B"}) {
		t.Errorf("config does not hold the resolved settings (name, mode, --max-iterations, model, agents): %s", d.Config)
	}

	seed := int64(1234)
	want, _, err := loadExperiment(exp, false, &experiment.Overrides{Seed: &seed, MaxIterations: 4, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if d.ConfigHash != want.Hash() {
		t.Errorf("config_hash %q, want %q", d.ConfigHash, want.Hash())
	}
	jsonEqual(t, "config", d.Config, want.ResolvedJSON())
}

func TestIterationRecordsSaved(t *testing.T) {
	exp := testdataPath(t, "experiments/exp1.yaml")
	db := filepath.Join(t.TempDir(), "all.db")
	mustRun(t, "run", exp, "--db", db, "--quiet")
	_, recs := referenceRun(t, exp, experiment.Overrides{})
	wantIters := records[*schema.Iteration](recs)

	st := openStore(t, db)
	d := onlyExperiment(t, st)
	iters, err := st.Iterations(t.Context(), d.ExperimentID)
	if err != nil {
		t.Fatal(err)
	}
	if len(iters) != d.NumIterations || len(iters) != len(wantIters) {
		t.Fatalf("%d iterations stored, completion says %d, the run made %d", len(iters), d.NumIterations, len(wantIters))
	}
	for i, it := range iters {
		if it.Iteration != i+1 || it.ExpID != d.ExperimentID {
			t.Errorf("row %d: iteration %d of %q, want %d of %q", i, it.Iteration, it.ExpID, i+1, d.ExperimentID)
		}
		if i > 0 && it.Timestamp.Before(iters[i-1].Timestamp) {
			t.Errorf("iteration %d stamped %s, before iteration %d", it.Iteration, it.Timestamp, i)
		}
		w := wantIters[i]
		jsonEqual(t, fmt.Sprintf("iteration %d policies", it.Iteration), it.Policies, w.Policies)
		if !maps.Equal(it.AcceptedChanges, w.AcceptedChanges) {
			t.Errorf("iteration %d accepted changes %v, want %v", it.Iteration, it.AcceptedChanges, w.AcceptedChanges)
		}
	}
}

func TestIterationRecordsHaveCosts(t *testing.T) {
	cases := []struct {
		name, file string
		seed       int64
		maxIter    int
	}{
		{"deterministic exp1", "experiments/exp1.yaml", 42, 0},
		{"bootstrap exp2", "experiments/exp2.yaml", 11, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := testdataPath(t, tc.file)
			db := filepath.Join(t.TempDir(), "all.db")
			args := []string{"run", exp, "--db", db, "--quiet", "--seed", fmt.Sprint(tc.seed)}
			if tc.maxIter > 0 {
				args = append(args, "--max-iterations", fmt.Sprint(tc.maxIter))
			}
			mustRun(t, args...)
			_, recs := referenceRun(t, exp, experiment.Overrides{Seed: &tc.seed, MaxIterations: tc.maxIter})
			want := records[*schema.Iteration](recs)

			assertIntegerColumns(t, db, schema.TableIterations, "typeof(total_cost)",
				"json_type(agent_costs, '$.BANK_A')", "json_type(agent_costs, '$.BANK_B')")

			st := openStore(t, db)
			d := onlyExperiment(t, st)
			iters, err := st.Iterations(t.Context(), d.ExperimentID)
			if err != nil {
				t.Fatal(err)
			}
			if len(iters) == 0 || iters[0].Iteration != 1 {
				t.Fatalf("iterations %+v, want the first numbered 1", iters)
			}
			if len(iters) != len(want) {
				t.Fatalf("%d iterations stored, the run made %d", len(iters), len(want))
			}
			for i, it := range iters {
				var sum int64
				for _, c := range it.AgentCosts {
					sum += c
				}
				if it.TotalCost != sum || it.TotalCost <= 0 {
					t.Errorf("iteration %d: total cost %d, agent costs %v (sum %d)", it.Iteration, it.TotalCost, it.AgentCosts, sum)
				}
				if it.TotalCost != want[i].TotalCost || !maps.Equal(it.AgentCosts, want[i].AgentCosts) {
					t.Errorf("iteration %d: stored cost %d %v, the run's %d %v", it.Iteration, it.TotalCost, it.AgentCosts, want[i].TotalCost, want[i].AgentCosts)
				}
			}
		})
	}
}

func TestExperimentMarkedComplete(t *testing.T) {
	cases := []struct {
		name, file string
		maxIter    int
		converged  bool
	}{
		{"converges", "experiments/exp1.yaml", 0, true},
		{"stops at --max-iterations", "experiments/exp2.yaml", 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := testdataPath(t, tc.file)
			db := filepath.Join(t.TempDir(), "all.db")
			start := time.Now()
			mustRun(t, "run", exp, "--db", db, "--quiet", "--max-iterations", fmt.Sprint(tc.maxIter))
			elapsed := time.Since(start)
			want, _ := referenceRun(t, exp, experiment.Overrides{MaxIterations: tc.maxIter})
			if want.Converged != tc.converged {
				t.Fatalf("test premise: the run converged=%v, want %v", want.Converged, tc.converged)
			}

			st := openStore(t, db)
			d := onlyExperiment(t, st)
			if d.Status != schema.StatusCompleted || d.CompletedAt == nil {
				t.Fatalf("status %q completed_at %v, want completed with a time", d.Status, d.CompletedAt)
			}
			if d.CompletedAt.Before(d.StartedAt) {
				t.Errorf("completed_at %s before started_at %s", d.CompletedAt, d.StartedAt)
			}
			if d.DurationSeconds == nil || *d.DurationSeconds < 0 || *d.DurationSeconds > elapsed.Seconds() {
				t.Errorf("duration %v s, want between 0 and the run's %s", d.DurationSeconds, elapsed)
			}
			if d.Converged != want.Converged || d.ConvergenceReason != want.Reason || d.NumIterations != want.Iterations {
				t.Errorf("stored converged=%v (%q) after %d iterations, the run: %v (%q) after %d",
					d.Converged, d.ConvergenceReason, d.NumIterations, want.Converged, want.Reason, want.Iterations)
			}
			running, err := st.List(t.Context(), store.ListOptions{Status: schema.StatusRunning})
			if err != nil {
				t.Fatal(err)
			}
			if len(running) != 0 {
				t.Errorf("experiments still listed as running: %+v", running)
			}
			events, err := st.Events(t.Context(), d.ExperimentID, store.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if last := events[len(events)-1]; last.EventType != "experiment_end" || !strings.Contains(string(last.Data), `"status":"completed"`) {
				t.Errorf("last event %s %s, want experiment_end with status completed", last.EventType, last.Data)
			}
		})
	}
}

func TestFinalCostsSaved(t *testing.T) {
	cases := []struct {
		name, file string
		seed       int64
		maxIter    int
	}{
		{"deterministic exp1", "experiments/exp1.yaml", 7, 0},
		{"bootstrap exp2", "experiments/exp2.yaml", 5, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := testdataPath(t, tc.file)
			db := filepath.Join(t.TempDir(), "all.db")
			mustRun(t, "run", exp, "--db", db, "--quiet", "--seed", fmt.Sprint(tc.seed), "--max-iterations", fmt.Sprint(tc.maxIter))
			want, _ := referenceRun(t, exp, experiment.Overrides{Seed: &tc.seed, MaxIterations: tc.maxIter})

			assertIntegerColumns(t, db, schema.TableCompletions, "typeof(final_cost)", "typeof(best_cost)",
				"json_type(agent_final_costs, '$.BANK_A')", "json_type(agent_final_costs, '$.BANK_B')")

			d := onlyExperiment(t, openStore(t, db))
			if d.FinalCost == nil || *d.FinalCost != want.FinalCost {
				t.Errorf("final cost %v, the run's %d", d.FinalCost, want.FinalCost)
			}
			if d.BestCost == nil || *d.BestCost != want.BestCost {
				t.Errorf("best cost %v, the run's %d", d.BestCost, want.BestCost)
			}
			if !maps.Equal(d.AgentFinalCosts, want.AgentCosts) {
				t.Errorf("agent final costs %v, the run's %v", d.AgentFinalCosts, want.AgentCosts)
			}
			var sum int64
			for _, c := range d.AgentFinalCosts {
				sum += c
			}
			if d.FinalCost != nil && *d.FinalCost != sum {
				t.Errorf("final cost %d is not the sum of the agents' %v", *d.FinalCost, d.AgentFinalCosts)
			}
			wantPolicies, err := json.Marshal(want.FinalPolicies)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, "final policies", d.FinalPolicies, wantPolicies)
		})
	}
}

func TestLLMEventsSaved(t *testing.T) {
	fractions := []float64{0.3, 0.1, 0.0, 0.25}
	llm := newFakeLLM(t, func(n int) (string, int, int) {
		return policyAnswer(fractions[n%len(fractions)]), 1000 + n, 40 + n
	})
	dir := t.TempDir()
	exp := llmExperiment(t, dir, llm.srv.URL+"/v1/")
	db := filepath.Join(dir, "all.db")
	// One call at a time: the checks below pair events with requests by order.
	mustRun(t, "run", exp, "--db", db, "--quiet", "--max-iterations", "3", "--model-calls", "1")

	calls := llm.count()
	if calls == 0 {
		t.Fatal("the runner never called the model server")
	}
	for _, m := range llm.requestedModels() {
		if m != "test" {
			t.Errorf("request for model %q, want test", m)
		}
	}
	st := openStore(t, db)
	d := onlyExperiment(t, st)
	if d.Model != "openai:test" {
		t.Errorf("model %q, want openai:test", d.Model)
	}
	events, err := st.Events(t.Context(), d.ExperimentID, store.EventFilter{Type: "llm_interaction"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != calls {
		t.Fatalf("%d llm_interaction events, the server answered %d requests", len(events), calls)
	}
	var promptSum, completionSum int
	for n, ev := range events {
		var data struct {
			Agent            string          `json:"agent"`
			Model            string          `json:"model"`
			SystemPrompt     string          `json:"system_prompt"`
			UserPrompt       string          `json:"user_prompt"`
			RawResponse      string          `json:"raw_response"`
			ParsedPolicy     json.RawMessage `json:"parsed_policy"`
			ParseError       string          `json:"parse_error"`
			PromptTokens     int             `json:"prompt_tokens"`
			CompletionTokens int             `json:"completion_tokens"`
			LatencySeconds   *float64        `json:"latency_seconds"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("event %d: %v: %s", ev.Seq, err, ev.Data)
		}
		f := fractions[n%len(fractions)]
		if data.PromptTokens != 1000+n || data.CompletionTokens != 40+n {
			t.Errorf("event %d: tokens %d/%d, the server reported %d/%d", ev.Seq, data.PromptTokens, data.CompletionTokens, 1000+n, 40+n)
		}
		promptSum += data.PromptTokens
		completionSum += data.CompletionTokens
		if data.RawResponse != policyAnswer(f) {
			t.Errorf("event %d: raw response %q, want the server's answer", ev.Seq, data.RawResponse)
		}
		var parsed struct {
			Parameters map[string]float64 `json:"parameters"`
		}
		if err := json.Unmarshal(data.ParsedPolicy, &parsed); err != nil || parsed.Parameters["initial_liquidity_fraction"] != f || data.ParseError != "" {
			t.Errorf("event %d: parsed policy %s (error %q), want fraction %g", ev.Seq, data.ParsedPolicy, data.ParseError, f)
		}
		if data.Agent != "BANK_A" && data.Agent != "BANK_B" || data.Model != "test" ||
			data.SystemPrompt == "" || !strings.Contains(data.UserPrompt, data.Agent) || data.LatencySeconds == nil || *data.LatencySeconds < 0 {
			t.Errorf("event %d: agent %q model %q, prompts %d/%d bytes, latency %v", ev.Seq, data.Agent, data.Model,
				len(data.SystemPrompt), len(data.UserPrompt), data.LatencySeconds)
		}
		if ev.Iteration < 1 || ev.Iteration > 3 {
			t.Errorf("event %d in iteration %d, want 1..3", ev.Seq, ev.Iteration)
		}
	}

	stats, err := st.Events(t.Context(), d.ExperimentID, store.EventFilter{Type: "llm_stats"})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 {
		t.Fatalf("%d llm_stats events, want 1", len(stats))
	}
	var s struct {
		Calls            int `json:"calls"`
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
	if err := json.Unmarshal(stats[0].Data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Calls != calls || s.PromptTokens != promptSum || s.CompletionTokens != completionSum {
		t.Errorf("llm_stats %s, want %d calls, %d prompt and %d completion tokens", stats[0].Data, calls, promptSum, completionSum)
	}
}

func TestPolicyEventsSaved(t *testing.T) {
	cases := []struct {
		name string
		// exp returns the experiment file and the number of iterations.
		exp          func(t *testing.T, dir string) (string, int)
		wantAccepted bool // at least one proposal is accepted
		wantInvalid  bool // rejections are invalid proposals (from the model server)
	}{
		{
			name: "builtin search",
			exp: func(t *testing.T, _ string) (string, int) {
				return testdataPath(t, "experiments/exp1.yaml"), 0
			},
			wantAccepted: true,
		},
		{
			name: "LLM proposals outside the parameter bounds",
			exp: func(t *testing.T, dir string) (string, int) {
				llm := newFakeLLM(t, func(int) (string, int, int) { return policyAnswer(2.5), 10, 10 })
				return llmExperiment(t, dir, llm.srv.URL+"/v1/"), 2
			},
			wantInvalid: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exp, maxIter := tc.exp(t, dir)
			db := filepath.Join(dir, "all.db")
			mustRun(t, "run", exp, "--db", db, "--quiet", "--max-iterations", fmt.Sprint(maxIter))
			var recs []schema.Record // what the offline optimizer's run makes
			if !tc.wantInvalid {
				_, recs = referenceRun(t, exp, experiment.Overrides{MaxIterations: maxIter})
			}

			st := openStore(t, db)
			d := onlyExperiment(t, st)
			evals, err := st.Evaluations(t.Context(), d.ExperimentID, store.EvalFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if recs != nil {
				if want := len(records[*schema.PolicyEvaluation](recs)); len(evals) != want {
					t.Errorf("%d policy_evaluations rows, the run made %d", len(evals), want)
				}
			}
			events, err := st.Events(t.Context(), d.ExperimentID, store.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			iters, err := st.Iterations(t.Context(), d.ExperimentID)
			if err != nil {
				t.Fatal(err)
			}
			type key struct {
				iter  int
				agent string
			}
			decisions := map[key]store.EventRow{}
			for _, ev := range events {
				if ev.EventType != "policy_accepted" && ev.EventType != "policy_rejected" {
					continue
				}
				var data struct{ Agent string }
				if err := json.Unmarshal(ev.Data, &data); err != nil {
					t.Fatal(err)
				}
				k := key{ev.Iteration, data.Agent}
				if _, dup := decisions[k]; dup {
					t.Errorf("two policy decisions for %s in iteration %d", k.agent, k.iter)
				}
				decisions[k] = ev
			}
			if len(evals) == 0 || len(decisions) == 0 {
				t.Fatalf("%d evaluations and %d policy events, want some", len(evals), len(decisions))
			}
			var accepted, rejected, unchanged int
			for _, e := range evals {
				if e.Delta != e.OldCost-e.NewCost {
					t.Errorf("iteration %d %s: delta %d, old %d - new %d", e.Iteration, e.Agent, e.Delta, e.OldCost, e.NewCost)
				}
				if e.Iteration >= 1 && e.Iteration <= len(iters) {
					if got, ok := iters[e.Iteration-1].AcceptedChanges[e.Agent]; !ok || got != e.Accepted {
						t.Errorf("iteration %d accepted_changes[%s] = %v (present %v), evaluation accepted %v", e.Iteration, e.Agent, got, ok, e.Accepted)
					}
				}
				ev, ok := decisions[key{e.Iteration, e.Agent}]
				if strings.HasPrefix(e.Reason, "unchanged") {
					// An unchanged proposal is not a decision: no event.
					unchanged++
					if ok {
						t.Errorf("iteration %d %s: unchanged proposal has a %s event", e.Iteration, e.Agent, ev.EventType)
					}
					continue
				}
				if !ok {
					t.Errorf("iteration %d %s: evaluation (%s) has no policy_accepted/policy_rejected event", e.Iteration, e.Agent, e.Reason)
					continue
				}
				wantType := "policy_rejected"
				if e.Accepted {
					wantType = "policy_accepted"
					accepted++
				} else {
					rejected++
				}
				var data struct{ Reason string }
				if err := json.Unmarshal(ev.Data, &data); err != nil {
					t.Fatal(err)
				}
				if ev.EventType != wantType || data.Reason != e.Reason {
					t.Errorf("iteration %d %s: event %s (%q), evaluation accepted=%v (%q)", e.Iteration, e.Agent, ev.EventType, data.Reason, e.Accepted, e.Reason)
				}
				if tc.wantInvalid && (!strings.HasPrefix(e.Reason, "invalid proposal") || e.NumSamples != 0 || !strings.Contains(string(ev.Data), "initial_liquidity_fraction")) {
					t.Errorf("iteration %d %s: reason %q, samples %d, event %s; want an invalid proposal naming the parameter", e.Iteration, e.Agent, e.Reason, e.NumSamples, ev.Data)
				}
			}
			if accepted+rejected != len(decisions) {
				t.Errorf("%d policy events, but %d evaluations were decided", len(decisions), accepted+rejected)
			}
			if rejected == 0 || (accepted > 0) != tc.wantAccepted {
				t.Errorf("%d accepted, %d rejected, %d unchanged; want rejections and accepted>0 = %v", accepted, rejected, unchanged, tc.wantAccepted)
			}
		})
	}
}

func TestResultsCommandListsExperiments(t *testing.T) {
	results := binaries(t, "results")["results"]
	db := filepath.Join(t.TempDir(), "all.db")
	mustRun(t, "run", testdataPath(t, "experiments/exp1.yaml"), "--db", db, "--quiet")
	mustRun(t, "run", testdataPath(t, "experiments/exp2.yaml"), "--db", db, "--quiet", "--max-iterations", "2", "--seed", "3")

	st := openStore(t, db)
	want, err := st.List(t.Context(), store.ListOptions{Sort: "name"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // let the results process open the file
	if len(want) != 2 {
		t.Fatalf("database lists %d experiments, want 2", len(want))
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), results, "list", "--db", db, "--format", "json", "--sort", "name")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("results list: %v\n%s", err, stderr.String())
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		t.Fatalf("results list --format json: %v\n%s", err, stdout.String())
	}
	if len(raw) != 2 {
		t.Fatalf("results list printed %d experiments, want 2:\n%s", len(raw), stdout.String())
	}
	for _, row := range raw {
		for _, f := range []string{"experiment_id", "experiment_name", "status", "num_iterations", "converged",
			"convergence_reason", "final_cost", "best_cost", "started_at", "completed_at"} {
			if _, ok := row[f]; !ok {
				t.Errorf("results list row lacks %s: %v", f, slices.Sorted(maps.Keys(row)))
			}
		}
	}
	var got []store.ExperimentSummary
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		w := want[i]
		if g.ExperimentID != w.ExperimentID || g.ExperimentName != w.ExperimentName || g.Status != schema.StatusCompleted ||
			g.NumIterations != w.NumIterations || g.Converged != w.Converged || g.ConvergenceReason != w.ConvergenceReason ||
			g.FinalCost == nil || w.FinalCost == nil || *g.FinalCost != *w.FinalCost ||
			g.BestCost == nil || w.BestCost == nil || *g.BestCost != *w.BestCost ||
			!g.StartedAt.Equal(w.StartedAt) || g.CompletedAt == nil || w.CompletedAt == nil || !g.CompletedAt.Equal(*w.CompletedAt) {
			t.Errorf("results list row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if got[0].ExperimentName != "exp1" || got[1].ExperimentName != "exp2" || got[1].NumIterations != 2 {
		t.Errorf("listed %q (%d iterations) and %q (%d), want exp1 and exp2 (2)", got[0].ExperimentName, got[0].NumIterations, got[1].ExperimentName, got[1].NumIterations)
	}
}
