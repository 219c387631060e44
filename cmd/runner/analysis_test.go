package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"simcash/analysis"
	"simcash/bus"
	"simcash/store"
)

// proc runs a command with the tests' environment and returns its output.
type procResult struct {
	stdout, stderr string
	code           int
}

func runProc(t *testing.T, dir string, env []string, bin string, args ...string) procResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
		}
		code = ee.ExitCode()
	}
	return procResult{o.String(), e.String(), code}
}

func mustProc(t *testing.T, dir string, env []string, bin string, args ...string) procResult {
	t.Helper()
	r := runProc(t, dir, env, bin, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// progressLines keeps the lines `runner run` prints per iteration and
// decision.
func progressLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "iteration ") || strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "    ") {
			out = append(out, l)
		}
	}
	return out
}

// TestAnalysisOfStoredRuns stores three seeds of exp2, one exp1 run and a
// run against a scripted model through a persister process, then uses every
// analysis command on them while the persister still holds the database.
func TestAnalysisOfStoredRuns(t *testing.T) {
	b := binaries(t, "persister", "runner", "results")
	dir := t.TempDir()
	db := filepath.Join(dir, "all.db")
	p := startPersister(t, b["persister"], db)
	env := childEnv("SIMCASH_NATS_URL="+p.url, "OPENAI_API_KEY=")

	type stored struct {
		id     string
		stderr string
	}
	var exp2 []stored
	for _, seed := range []string{"1", "2", "3"} {
		r := mustProc(t, dir, env, b["runner"], "run", testdataPath(t, "experiments/exp2.yaml"), "--seed", seed, "--max-iterations", "8")
		sum, err := parseSummary(r.stdout)
		if err != nil {
			t.Fatalf("%v:\n%s", err, r.stdout)
		}
		exp2 = append(exp2, stored{sum.id, r.stderr})
	}
	r := mustProc(t, dir, env, b["runner"], "run", testdataPath(t, "experiments/exp1.yaml"), "--quiet")
	exp1, err := parseSummary(r.stdout)
	if err != nil {
		t.Fatal(err)
	}
	fractions := []float64{0.3, 0.1}
	llm := newFakeLLM(t, func(n int) (string, int, int) {
		return policyAnswer(fractions[n%len(fractions)]), 1000 + n, 40 + n
	})
	llmExp := llmExperiment(t, dir, llm.srv.URL+"/v1/")
	r = mustProc(t, dir, env, b["runner"], "run", llmExp, "--quiet", "--max-iterations", "2")
	scripted, err := parseSummary(r.stdout)
	if err != nil {
		t.Fatal(err)
	}

	results := func(t *testing.T, args ...string) procResult {
		t.Helper()
		return mustProc(t, dir, env, b["results"], append(args, "--db", db)...)
	}
	// The persister stores asynchronously: wait for the five completions.
	deadline := time.Now().Add(time.Minute)
	var list []store.ExperimentSummary
	for {
		out := results(t, "list", "--status", "completed", "--format", "json")
		if err := json.Unmarshal([]byte(out.stdout), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d completed runs stored after a minute, want 5", len(list))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(bus.InfoFile(db)); err != nil {
		t.Fatalf("the persister should still hold the database: %v", err)
	}

	t.Run("replay", func(t *testing.T) {
		for _, s := range exp2 {
			got := progressLines(results(t, "replay", s.id).stdout)
			want := progressLines(s.stderr)
			if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("replay of %s:\n%s\nwant runner run's lines:\n%s", s.id, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
		out := results(t, "replay", exp2[0].id, "--iterations", "2:3", "--agent", "BANK_A").stdout
		if strings.Contains(out, "iteration 1/") || !strings.Contains(out, "iteration 2/") || strings.Contains(out, "\n  BANK_B") {
			t.Errorf("replay --iterations 2:3 --agent BANK_A:\n%s", out)
		}
		audit := results(t, "replay", scripted.id, "--audit").stdout
		llm.mu.Lock()
		msgs := slices.Clone(llm.messages)
		llm.mu.Unlock()
		if len(msgs) == 0 {
			t.Fatal("the scripted model was never called")
		}
		// Every line of every prompt the server received is in the audit.
		for _, req := range msgs {
			for _, m := range req {
				for _, line := range strings.Split(m, "\n") {
					if line = strings.TrimSpace(line); line != "" && !strings.Contains(audit, line) {
						t.Fatalf("replay --audit lacks the prompt line %q", line)
					}
				}
			}
		}
		for _, want := range []string{"system prompt:", "user prompt:", "answer:", "Commit less liquidity.", "parsed policy:",
			`"initial_liquidity_fraction":0.3`, "1000 prompt + 40 completion tokens", "[audit] decision:", "BANK_A", "BANK_B"} {
			if !strings.Contains(audit, want) {
				t.Errorf("replay --audit lacks %q:\n%s", want, audit)
			}
		}
	})

	t.Run("chart", func(t *testing.T) {
		pngPath, svgPath, seedsPath := filepath.Join(dir, "one.png"), filepath.Join(dir, "one.svg"), filepath.Join(dir, "seeds.png")
		results(t, "chart", exp2[0].id, "-o", pngPath)
		results(t, "chart", exp2[0].id, "-o", svgPath)
		results(t, "chart", "--name", "exp2", "-o", seedsPath)
		for _, path := range []string{pngPath, seedsPath} {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if bb := img.Bounds(); bb.Dx() < 800 || bb.Dy() < 300 {
				t.Errorf("%s is %v, want at least 800x300", path, bb)
			}
			// The series' colours are present: the blue line of the policy in
			// force (and its band for the seeds chart), and not a blank page.
			if n := countColor(img, 0x25, 0x63, 0xeb); n < 200 {
				t.Errorf("%s: %d pixels of the trajectory's blue, want a drawn line", path, n)
			}
			if colours := distinctColors(img); colours < 20 {
				t.Errorf("%s: %d distinct colours: blank?", path, colours)
			}
		}
		svg, err := os.ReadFile(svgPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<svg", "BANK_A: initial_liquidity_fraction", "BANK_B: cost per iteration",
			"policy in force", "rejected proposal", "stroke:#2563EB", exp2[0].id} {
			if !bytes.Contains(svg, []byte(want)) {
				t.Errorf("the SVG lacks %q", want)
			}
		}
		if r := runProc(t, dir, env, b["results"], "chart", exp2[0].id, "--agent", "NOBODY", "--db", db, "-o", pngPath); r.code != 2 || !strings.Contains(r.stderr, "no agent \"NOBODY\"") {
			t.Errorf("chart --agent NOBODY: exit %d, %s", r.code, r.stderr)
		}
	})

	t.Run("compare", func(t *testing.T) {
		var c analysis.Comparison
		if err := json.Unmarshal([]byte(results(t, "compare", "--name", "exp2", "--group-by", "config", "--format", "json").stdout), &c); err != nil {
			t.Fatal(err)
		}
		if len(c.Runs) != 3 || len(c.Groups) != 1 {
			t.Fatalf("compare: %d runs, %d groups, want 3 and 1", len(c.Runs), len(c.Groups))
		}
		var costs []float64
		for _, r := range c.Runs {
			costs = append(costs, float64(*r.FinalCost))
		}
		// By hand: mean, sample sd, t(0.975, 2) = 4.302652729911275.
		mean := (costs[0] + costs[1] + costs[2]) / 3
		var ss float64
		for _, x := range costs {
			ss += (x - mean) * (x - mean)
		}
		sd := math.Sqrt(ss / 2)
		half := 4.302652729911275 * sd / math.Sqrt(3)
		g := c.Groups[0].FinalCost
		if g.N != 3 || !near(g.Mean, mean) || !near(g.SD, sd) || !near(g.Lo, mean-half) || !near(g.Hi, mean+half) {
			t.Errorf("group final cost %+v, want n=3 mean %.4f sd %.4f CI [%.4f, %.4f]", g, mean, sd, mean-half, mean+half)
		}
		var seedsDiffer bool
		for _, d := range c.Config {
			seedsDiffer = seedsDiffer || d.Key == "master_seed"
		}
		if !seedsDiffer {
			t.Errorf("config differences %+v should name master_seed", c.Config)
		}
		table := results(t, "compare", exp2[0].id, exp1.id).stdout
		for _, want := range []string{"Configuration keys that differ:", "scenario", "final cost [BANK_A]", "initial_liquidity_fraction [BANK_B]"} {
			if !strings.Contains(table, want) {
				t.Errorf("compare table lacks %q:\n%s", want, table)
			}
		}
	})

	t.Run("diff", func(t *testing.T) {
		// Find an agent whose policy changed in the first exp2 run.
		var its []store.IterationRow
		if err := json.Unmarshal([]byte(results(t, "iterations", exp2[0].id, "--format", "json").stdout), &its); err != nil {
			t.Fatal(err)
		}
		agent := ""
		for _, it := range its {
			for a, ok := range it.AcceptedChanges {
				if ok && agent == "" {
					agent = a
				}
			}
		}
		if agent == "" {
			t.Fatalf("no accepted change in %s to diff", exp2[0].id)
		}
		out := results(t, "diff", exp2[0].id, "--agent", agent).stdout
		if !strings.Contains(out, "parameter initial_liquidity_fraction: 0.5 -> ") {
			t.Errorf("diff --agent %s:\n%s", agent, out)
		}
		pol := results(t, "policies", exp2[0].id, "--agent", agent).stdout
		if !strings.Contains(pol, "final") || strings.Count(pol, "\n") < 3 {
			t.Errorf("policies --agent %s:\n%s", agent, pol)
		}
	})

	exportDir := filepath.Join(dir, "export")
	t.Run("sql and export while the persister runs", func(t *testing.T) {
		out := results(t, "sql", "SELECT count(*) AS n FROM runs WHERE status = 'completed'", "--format", "csv").stdout
		if out != "n\n5\n" {
			t.Errorf("sql count: %q", out)
		}
		for _, q := range []string{"DELETE FROM experiments", "SELECT 1; DROP TABLE events", "COPY events TO '/tmp/x.csv'"} {
			if r := runProc(t, dir, env, b["results"], "sql", q, "--db", db); r.code != 2 || !strings.Contains(r.stderr, "only a single SELECT") {
				t.Errorf("sql %q: exit %d, stderr %q; want exit 2 and a refusal", q, r.code, r.stderr)
			}
		}
		results(t, "export", exportDir)
		if _, err := os.Stat(bus.InfoFile(db)); err != nil {
			t.Fatalf("the persister stopped holding the database during the test: %v", err)
		}
	})

	p.stop(t)
	t.Run("parquet reads back row for row", func(t *testing.T) {
		conn, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Exec(fmt.Sprintf("ATTACH '%s' AS r (READ_ONLY)", db)); err != nil {
			t.Fatal(err)
		}
		for _, table := range store.ExportTables {
			file := filepath.Join(exportDir, table+".parquet")
			var inFile, inDB, missing, extra int
			q := fmt.Sprintf(`SELECT (SELECT count(*) FROM read_parquet('%[1]s')), (SELECT count(*) FROM r.%[2]s),
				(SELECT count(*) FROM (SELECT * FROM r.%[2]s EXCEPT ALL SELECT * FROM read_parquet('%[1]s'))),
				(SELECT count(*) FROM (SELECT * FROM read_parquet('%[1]s') EXCEPT ALL SELECT * FROM r.%[2]s))`, file, table)
			if err := conn.QueryRow(q).Scan(&inFile, &inDB, &missing, &extra); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			if inFile != inDB || missing != 0 || extra != 0 || inDB == 0 {
				t.Errorf("%s: %d rows in the file, %d in the database, %d missing, %d extra", table, inFile, inDB, missing, extra)
			}
		}
	})
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func countColor(img image.Image, r, g, b uint8) int {
	n := 0
	bb := img.Bounds()
	for y := bb.Min.Y; y < bb.Max.Y; y++ {
		for x := bb.Min.X; x < bb.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if uint8(cr>>8) == r && uint8(cg>>8) == g && uint8(cb>>8) == b {
				n++
			}
		}
	}
	return n
}

func distinctColors(img image.Image) int {
	set := map[[3]uint32]bool{}
	bb := img.Bounds()
	for y := bb.Min.Y; y < bb.Max.Y; y += 3 {
		for x := bb.Min.X; x < bb.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			set[[3]uint32{r, g, b}] = true
		}
	}
	return len(set)
}

// TestRerunFromDatabase runs exp2 from a scenario file that is deleted
// afterwards: `results show` still shows the scenario, and `runner rerun`
// repeats the run from the database with identical records apart from ids
// and times.
func TestRerunFromDatabase(t *testing.T) {
	b := binaries(t, "results")
	dir := t.TempDir()
	scn := filepath.Join(dir, "scenario.yaml")
	data, err := os.ReadFile(testdataPath(t, "scenarios/exp2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scn, data, 0o644); err != nil {
		t.Fatal(err)
	}
	exp := writeExperiment(t, dir, testdataPath(t, "experiments/exp2.yaml"), "scenario: ../scenarios/exp2.yaml", "scenario: scenario.yaml")
	db := filepath.Join(dir, "all.db")
	mustRun(t, "run", exp, "--db", db, "--quiet", "--seed", "9", "--max-iterations", "6")
	if err := os.Remove(scn); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, db)
	first := onlyExperiment(t, st)
	st.Close()

	show := mustProc(t, dir, childEnv(), b["results"], "show", first.ExperimentID, "--db", db).stdout
	for _, want := range []string{"Scenario (scenario.yaml, as recorded):", "rate_per_tick: 2.0", "ticks_per_day: 12"} {
		if !strings.Contains(show, want) {
			t.Errorf("results show after the scenario was deleted lacks %q:\n%s", want, show)
		}
	}

	if code := runRunner(t, t.Context(), "rerun", first.ExperimentID, "--from", db, "--quiet"); code != 0 {
		t.Fatalf("runner rerun exited %d", code)
	}
	if code := runRunner(t, t.Context(), "rerun", "nonexistent-id", "--from", db); code != 2 {
		t.Errorf("rerun of an unknown id exited %d, want 2", code)
	}
	st = openStore(t, db)
	list, err := st.List(t.Context(), store.ListOptions{Sort: "started_at"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d experiments after the rerun, want 2", len(list))
	}
	a, bID := list[0].ExperimentID, list[1].ExperimentID
	load := func(id string) (*store.ExperimentDetail, []store.IterationRow, []store.EvaluationRow, []store.EventRow) {
		d, err := st.Show(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		its, err := st.Iterations(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.Evaluations(t.Context(), id, store.EvalFilter{})
		if err != nil {
			t.Fatal(err)
		}
		events, err := st.Events(t.Context(), id, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		// Ids and times differ by design.
		d.ExperimentID, d.StartedAt, d.CompletedAt, d.DurationSeconds = "", time.Time{}, nil, nil
		for i := range its {
			its[i].ExpID, its[i].Timestamp = "", time.Time{}
		}
		for i := range evs {
			evs[i].ExpID, evs[i].Timestamp = "", time.Time{}
		}
		for i := range events {
			events[i].ExpID, events[i].Timestamp = "", time.Time{}
		}
		return d, its, evs, events
	}
	d1, it1, ev1, e1 := load(a)
	d2, it2, ev2, e2 := load(bID)
	same := func(what string, x, y any) {
		t.Helper()
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		if !bytes.Equal(bx, by) {
			t.Errorf("%s differ between the run and its rerun:\n%s\n%s", what, bx, by)
		}
	}
	same("experiment records", d1, d2)
	same("iterations", it1, it2)
	same("evaluations", ev1, ev2)
	same("events", e1, e2)
	if len(it1) != 6 || len(ev1) == 0 {
		t.Errorf("the run has %d iterations and %d evaluations, want 6 and some", len(it1), len(ev1))
	}
}

// TestReferencePaperQueries runs every query of the reference paper's data
// provider, unchanged, against a database holding a bootstrap run and a run
// against a scripted model.
func TestReferencePaperQueries(t *testing.T) {
	src := filepath.Join("..", "..", "..", "shared", "simcash-src", "docs", "papers", "simcash-paper", "paper_generator", "src", "data_provider.py")
	py, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("the reference's paper pipeline is not beside the checkout (%v)", err)
	}
	queries := regexp.MustCompile(`(?s)conn\.execute\(\s*"""(.*?)"""`).FindAllStringSubmatch(string(py), -1)
	if len(queries) < 6 {
		t.Fatalf("found %d queries in %s, want the provider's 6 or more", len(queries), src)
	}

	dir := t.TempDir()
	db := filepath.Join(dir, "all.db")
	mustRun(t, "run", testdataPath(t, "experiments/exp2.yaml"), "--db", db, "--quiet", "--max-iterations", "4")
	llm := newFakeLLM(t, func(n int) (string, int, int) { return policyAnswer(0.2), 900, 30 })
	mustRun(t, "run", llmExperiment(t, dir, llm.srv.URL+"/v1/"), "--db", db, "--quiet", "--max-iterations", "2")
	st := openStore(t, db)
	list, err := st.List(t.Context(), store.ListOptions{Sort: "started_at"})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %d runs", err, len(list))
	}
	st.Close()

	conn, err := sql.Open("duckdb", db+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Each ? gets the value its context asks for, as the provider passes it.
	param := regexp.MustCompile(`(run_id = |iteration = |'agent_id'\) = |LIKE |simulation_id = |LIMIT )\?`)
	for _, run := range list {
		for qi, m := range queries {
			q := m[1]
			var args []any
			for _, p := range param.FindAllStringSubmatch(q, -1) {
				switch p[1] {
				case "run_id = ", "simulation_id = ":
					args = append(args, run.ExperimentID)
				case "iteration = ":
					args = append(args, 1)
				case "'agent_id') = ":
					args = append(args, "BANK_A")
				case "LIKE ":
					args = append(args, run.ExperimentID+"%")
				case "LIMIT ":
					args = append(args, 30)
				}
			}
			if n := strings.Count(q, "?"); n != len(args) {
				t.Fatalf("query %d has %d parameters, this test fills %d:\n%s", qi, n, len(args), q)
			}
			rows, err := conn.Query(q, args...)
			if err != nil {
				t.Errorf("run %s, query %d failed: %v\n%s", run.ExperimentID, qi, err, q)
				continue
			}
			n := 0
			var first []any
			for rows.Next() {
				cols, _ := rows.Columns()
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					first = vals
				}
				n++
			}
			rows.Close()
			switch {
			case strings.Contains(q, "FROM experiment_iterations") && n == 0,
				strings.Contains(q, "FROM policy_evaluations") && n == 0:
				t.Errorf("run %s, query %d found nothing:\n%s", run.ExperimentID, qi, q)
			case strings.Contains(q, "'llm_interaction'") && run.Model == "openai:test":
				if n != 1 || !strings.Contains(fmt.Sprint(first[0]), "user_prompt") {
					t.Errorf("the llm_interaction query returned %d rows (%v), want the prompt", n, first)
				}
			}
		}
	}
}
