package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"simcash/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func policyJSON(f float64, extra string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"version":"2.0","policy_id":"p","parameters":{"initial_liquidity_fraction":%g},`+
		`"payment_tree":{"type":"action","node_id":"release","action":"Release"%s}}`, f, extra))
}

func i64(v int64) *int64 { return &v }

// analysisDB writes two seeds of one configuration, as the loop records
// them, with an LLM audit trail in the first.
func analysisDB(t *testing.T) string {
	t.Helper()
	var rs []schema.Record
	for k, seed := range []int64{1, 2} {
		id := fmt.Sprintf("exp2-2026112%d-120000-abcdef", k)
		cfg := fmt.Sprintf(`{"name":"exp2","master_seed":%d,"optimized_agents":["BANK_B","BANK_A"],"convergence":{"max_iterations":3},"llm":{"model":"openai:test"},"scenario":"s.yaml","scenario_content":"agents: []\n"}`, seed)
		start := t0.Add(time.Duration(k) * time.Hour)
		pol := func(a, b float64) json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`{"BANK_A":%s,"BANK_B":%s}`, policyJSON(a, ""), policyJSON(b, "")))
		}
		rs = append(rs,
			&schema.ExperimentStarted{ExpID: id, Name: "exp2", Type: "generic", Config: json.RawMessage(cfg), MasterSeed: seed,
				Scenario: "s.yaml", Model: "openai:test", StartedAt: start, ProgramVersion: "v1", Host: "h", ConfigHash: fmt.Sprint("hash", seed)},
			&schema.Iteration{ExpID: id, Iteration: 1, TotalCost: 99600, AgentCosts: map[string]int64{"BANK_A": 49800, "BANK_B": 49800},
				Policies: pol(0.5, 0.5), AcceptedChanges: map[string]bool{"BANK_A": true, "BANK_B": false}, Timestamp: start},
			&schema.Iteration{ExpID: id, Iteration: 2, TotalCost: 74700 + 100*seed, AgentCosts: map[string]int64{"BANK_A": 24900 + 100*seed, "BANK_B": 49800},
				Policies: pol(0.25, 0.5), AcceptedChanges: map[string]bool{"BANK_A": false, "BANK_B": false}, Timestamp: start},
			&schema.PolicyEvaluation{ExpID: id, Iteration: 1, Agent: "BANK_A", ProposedPolicy: policyJSON(0.25, ""), OldCost: 49800,
				NewCost: 24900, Delta: 24900, Accepted: true, Reason: "improvement: total delta $12,450.00", NumSamples: 50,
				SampleDetails: json.RawMessage(`[{"seed":7,"old_cost":49800,"new_cost":24900,"delta":24900}]`), Seed: 7, Timestamp: start,
				EvaluationMode: "bootstrap", ReasonCode: schema.ReasonImproved, MeanDelta: i64(24900), DeltaStdDev: i64(120),
				DeltaCILower: i64(24866), DeltaCIUpper: i64(24934), CostStdDev: i64(80), CostCILower: i64(24877), CostCIUpper: i64(24923)},
			&schema.PolicyEvaluation{ExpID: id, Iteration: 1, Agent: "BANK_B", ProposedPolicy: policyJSON(1, `,"parameters":{}`), OldCost: 49800,
				NewCost: 99600, Delta: -49800, Reason: "no improvement: total delta -$24,900.00", NumSamples: 50, Seed: 8, Timestamp: start,
				EvaluationMode: "bootstrap", ReasonCode: schema.ReasonNoImprovement, MeanDelta: i64(-49800), DeltaStdDev: i64(0)},
			&schema.PolicyEvaluation{ExpID: id, Iteration: 2, Agent: "BANK_B", ProposedPolicy: json.RawMessage(`{"invalid":"{oops"}`),
				OldCost: 49800, NewCost: 49800, Reason: "invalid proposal: the answer holds no policy JSON", Seed: 9, Timestamp: start,
				EvaluationMode: "bootstrap", ReasonCode: schema.ReasonInvalidProposal},
			&schema.ExperimentCompleted{ExpID: id, CompletedAt: start.Add(time.Minute), Status: "completed", Converged: false,
				ConvergenceReason: "max_iterations", NumIterations: 2, FinalCost: 74700 + 100*seed, BestCost: 74700 + 100*seed,
				FinalPolicies: pol(0.25, 0.5), AgentFinalCosts: map[string]int64{"BANK_A": 24900 + 100*seed, "BANK_B": 49800}, DurationSeconds: 60},
		)
		if k == 0 {
			rs = append(rs,
				&schema.Event{ExpID: id, Seq: 1, Iteration: 1, EventType: "llm_interaction", Timestamp: start, Data: json.RawMessage(
					`{"agent":"BANK_A","agent_id":"BANK_A","attempt":1,"model":"test","system_prompt":"You optimize payment policies.",` +
						`"user_prompt":"Costs so far: $498.00.\nPropose a policy.","raw_response":"Commit less.\u001b[2J","parsed_policy":` +
						string(policyJSON(0.25, "")) + `,"parse_error":"","prompt_tokens":1000,"completion_tokens":40,"latency_seconds":1.25}`)},
				&schema.Event{ExpID: id, Seq: 2, Iteration: 2, EventType: "policy_rejected", Timestamp: start, Data: json.RawMessage(
					`{"agent":"BANK_B","reason":"invalid proposal","errors":["payment_tree: missing node_id"]}`)})
		}
	}
	return writeDB(t, "analysis.db", rs)
}

// TestGolden pins what the analysis commands print for people, as
// testdata/<command>/<case>/stdout (go test -run TestGolden -update rewrites).
func TestGolden(t *testing.T) {
	db := analysisDB(t)
	id := "exp2-20261120-120000-abcdef"
	cases := []struct {
		command, name string
		args          []string
	}{
		{"replay", "full", []string{"replay", id}},
		{"replay", "audit", []string{"replay", id, "--audit", "--agent", "BANK_A"}},
		{"replay", "audit-rejected", []string{"replay", id, "--audit", "--agent", "BANK_B"}},
		{"replay", "iterations", []string{"replay", id, "--iterations", "2:2"}},
		{"compare", "grouped", []string{"compare", "--name", "exp2", "--group-by", "config"}},
		{"diff", "agent", []string{"diff", id, "--agent", "BANK_A"}},
		{"diff", "nochange", []string{"diff", id, "--agent", "BANK_B"}},
		{"policies", "agent", []string{"policies", id, "--agent", "BANK_A"}},
		{"sql", "final-costs", []string{"sql", "SELECT run_id, seed, agent_id, final_cost FROM run_final_costs ORDER BY run_id, agent_id"}},
		{"sql", "iteration-agents", []string{"sql", "SELECT run_id, iteration, agent_id, cost, parameters, accepted FROM iteration_agents ORDER BY ALL", "--format", "csv"}},
		{"list", "seeds", []string{"list"}},
	}
	for _, c := range cases {
		t.Run(c.command+"/"+c.name, func(t *testing.T) {
			out, errOut, code := runCmd(t, append(c.args, "--db", db)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			out = strings.ReplaceAll(out, db, "$DB")
			path := filepath.Join("testdata", c.command, c.name, "stdout")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("results %s differs from %s:\n--- got\n%s--- want\n%s", strings.Join(c.args, " "), path, out, want)
			}
		})
	}
}

// TestAnalysisUsageErrors: each mistake gets one message and exit 2.
func TestAnalysisUsageErrors(t *testing.T) {
	db := analysisDB(t)
	id := "exp2-20261120-120000-abcdef"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", id, "--iterations", "3:1"}, "FROM is after TO"},
		{[]string{"replay", id, "--iterations", "x"}, "use FROM:TO"},
		{[]string{"replay", id, "--iterations", "5:9"}, "has iterations 1 to 2"},
		{[]string{"replay", "nope"}, "experiment not found"},
		{[]string{"replay", id, "--agent", "BANK_Z"}, `no agent "BANK_Z"`},
		{[]string{"diff", id}, "needs --agent"},
		{[]string{"diff", id, "--agent", "BANK_A", "--to", "9"}, "run exp2-20261120-120000-abcdef has 1 to 2"},
		{[]string{"policies", id}, "needs --agent"},
		{[]string{"compare"}, "name the runs"},
		{[]string{"compare", id, "--name", "exp2"}, "name the runs"},
		{[]string{"compare", "--name", "nothing"}, "no runs match"},
		{[]string{"compare", id, "--group-by", "seed"}, "only grouping is 'config'"},
		{[]string{"chart", id, "-o", "x.gif"}, ".png or .svg"},
		{[]string{"chart", id, "--parameter", "nope", "-o", filepath.Join(t.TempDir(), "c.png")}, `no parameter "nope"`},
		{[]string{"sql", "DELETE FROM experiments"}, "only a single SELECT"},
		{[]string{"sql", "SELECT 1; SELECT 2"}, "only a single SELECT"},
		{[]string{"sql", "SELEC 1"}, "syntax error"},
		{[]string{"export", t.TempDir(), "--format", "xlsx"}, "use parquet or csv"},
	} {
		_, errOut, code := runCmd(t, append(c.args, "--db", db)...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("results %s: exit %d, %q; want exit 2 and one line with %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}

// TestExportCSV writes CSV files that hold every row, and refuses to
// overwrite them.
func TestExportCSV(t *testing.T) {
	db := analysisDB(t)
	dir := filepath.Join(t.TempDir(), "out")
	out, errOut, code := runCmd(t, "export", dir, "exp2-20261120-120000-abcdef", "--format", "csv", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "iterations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != 3 || !strings.Contains(out, "iterations") {
		t.Errorf("iterations.csv has %d lines, want a header and 2 rows:\n%s\n%s", lines, b, out)
	}
	if _, errOut, code := runCmd(t, "export", dir, "--format", "csv", "--db", db); code != 2 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second export into the same directory: exit %d, %s", code, errOut)
	}
}

// FuzzIterRange: --iterations never panics, and what it accepts is a valid
// range.
func FuzzIterRange(f *testing.F) {
	for _, s := range []string{"", "3:7", "5", ":4", "5:", "0:1", "x", "3:1", "1:2:3", "-1:2", "+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := iterRange(s)
		if err != nil {
			return
		}
		if from < 0 || to < 0 || (to > 0 && from > to) {
			t.Errorf("iterRange(%q) = %d, %d", s, from, to)
		}
	})
}

// TestHostileNamesPrintAsText: a stored name with terminal escapes prints
// escaped in list and show.
func TestHostileNamesPrintAsText(t *testing.T) {
	hostile := "evil\x1b[2J\x1b[31mred\r\nline\u202e"
	db := writeDB(t, "hostile.db", []schema.Record{&schema.ExperimentStarted{ExpID: "evil-1", Name: hostile, Type: "generic",
		Config: json.RawMessage(`{}`), Scenario: hostile, Model: hostile, StartedAt: t0, ProgramVersion: hostile, Host: "h", ConfigHash: "c"}})
	for _, args := range [][]string{{"list"}, {"show", "evil-1"}} {
		out, errOut, code := runCmd(t, append(args, "--db", db)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if strings.ContainsAny(out, "\x1b\r\u202e") || !strings.Contains(out, `evil\u001b[2J`) {
			t.Errorf("results %v prints the name raw:\n%q", args, out)
		}
	}
}
