package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"simcash/schema"
	"simcash/store"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		xs               []float64
		mean, sd, lo, hi float64
	}{
		{nil, 0, 0, 0, 0},
		{[]float64{5}, 5, 0, 5, 5},
		// mean 2, sd 1, t(0.975, 2) = 4.302652729911275, half = 4.3027/sqrt(3)
		{[]float64{1, 2, 3}, 2, 1, 2 - 4.302652729911275/math.Sqrt(3), 2 + 4.302652729911275/math.Sqrt(3)},
		{[]float64{10, 10, 10, 10}, 10, 0, 10, 10},
	} {
		s := Summarize(c.xs)
		for _, p := range [][2]float64{{s.Mean, c.mean}, {s.SD, c.sd}, {s.Lo, c.lo}, {s.Hi, c.hi}} {
			if math.Abs(p[0]-p[1]) > 1e-9 {
				t.Errorf("Summarize(%v) = %+v, want mean %g sd %g [%g, %g]", c.xs, s, c.mean, c.sd, c.lo, c.hi)
				break
			}
		}
		if s.N != len(c.xs) {
			t.Errorf("Summarize(%v).N = %d", c.xs, s.N)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\tok":         "plain text\tok",
		"clear\x1b[2Jscreen":     `clear\u001b[2Jscreen`,
		"cr\rlf\n":               `cr\u000dlf\u000a`,
		"c1\u009bcode":           `c1\u009bcode`,
		"bidi \u202eevil\u202c":  `bidi \u202eevil\u202c`,
		"dollars $1,234.56 é 日本": "dollars $1,234.56 é 日本",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// testRun is a two-iteration run of one agent whose tree gains a node.
func testRun(seed int64, output string) *Run {
	pol := func(f float64, tree string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"version": "2.0", "parameters": map[string]float64{"initial_liquidity_fraction": f},
			"payment_tree": json.RawMessage(tree)})
		return b
	}
	leaf := `{"type":"action","node_id":"release","action":"Release"}`
	cond := `{"type":"condition","node_id":"urgent","condition":{"op":"<=","left":{"field":"ticks_to_deadline"},"right":{"value":2}},` +
		`"on_true":{"type":"action","node_id":"release","action":"Release"},"on_false":{"type":"action","node_id":"hold","action":"Hold"}}`
	cfg, _ := json.Marshal(map[string]any{"name": "x", "master_seed": seed, "output": map[string]string{"database": output},
		"optimized_agents": []string{"A"}, "convergence": map[string]int{"max_iterations": 5}})
	final := 100 + seed
	done := time.Unix(0, 0)
	return &Run{
		Detail: &store.ExperimentDetail{ExperimentSummary: store.ExperimentSummary{ExperimentID: "x-" + string(rune('0'+seed)),
			ExperimentName: "x", Status: "completed", MasterSeed: seed, FinalCost: &final, CompletedAt: &done, NumIterations: 2},
			Config: cfg, FinalPolicies: json.RawMessage(`{"A":` + string(pol(0.25, cond)) + `}`), AgentFinalCosts: map[string]int64{"A": final}},
		Iterations: []store.IterationRow{
			{Iteration: 1, TotalCost: 300, AgentCosts: map[string]int64{"A": 300}, Policies: json.RawMessage(`{"A":` + string(pol(0.5, leaf)) + `}`),
				AcceptedChanges: map[string]bool{"A": true}},
			{Iteration: 2, TotalCost: 200, AgentCosts: map[string]int64{"A": 200}, Policies: json.RawMessage(`{"A":` + string(pol(0.25, cond)) + `}`),
				AcceptedChanges: map[string]bool{"A": false}},
		},
		Evaluations: []store.EvaluationRow{
			{Iteration: 1, Agent: "A", ProposedPolicy: pol(0.25, cond), OldCost: 300, NewCost: 200, Accepted: true, NumSamples: 1, ReasonCode: schema.ReasonImproved},
			{Iteration: 2, Agent: "A", ProposedPolicy: pol(0.9, leaf), OldCost: 200, NewCost: 250, NumSamples: 1, ReasonCode: schema.ReasonNoImprovement},
		},
	}
}

func TestDiff(t *testing.T) {
	r := testRun(1, "a.db")
	d, err := r.Diff("A", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Params) != 1 || d.Params[0].Name != "initial_liquidity_fraction" || *d.Params[0].Old != 0.5 || *d.Params[0].New != 0.25 {
		t.Errorf("params %+v", d.Params)
	}
	changes := map[string]string{}
	for _, n := range d.Nodes {
		changes[n.NodeID] = n.Change
	}
	// release was the root and is now a leaf under urgent: its own fields
	// did not change; urgent and hold are new.
	if len(changes) != 2 || changes["urgent"] != "added" || changes["hold"] != "added" {
		t.Errorf("node changes %v, want urgent and hold added", changes)
	}
	back, err := r.Diff("A", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Nodes) != 2 || back.Nodes[0].Change != "removed" {
		t.Errorf("diff back %+v", back.Nodes)
	}
	same, _ := r.Diff("A", 2, 3)
	if len(same.Params) != 0 || len(same.Nodes) != 0 {
		t.Errorf("iteration 2 and the final policy differ: %+v", same)
	}
	for _, c := range []struct {
		agent    string
		from, to int
	}{{"B", 1, 2}, {"", 1, 2}, {"A", 5, 0}, {"A", 1, 4}} {
		if _, err := r.Diff(c.agent, c.from, c.to); !errors.Is(err, ErrBadArgument) {
			t.Errorf("Diff(%q, %d, %d) = %v, want ErrBadArgument", c.agent, c.from, c.to, err)
		}
	}
}

func TestGroupsIgnoreSeedAndOutput(t *testing.T) {
	a, b := testRun(1, "a.db"), testRun(2, "b.db")
	if GroupKey(a) != GroupKey(b) {
		t.Error("runs differing by seed and output have different group keys")
	}
	c := testRun(3, "a.db")
	c.Detail.Config = json.RawMessage(strings.Replace(string(c.Detail.Config), `"max_iterations":5`, `"max_iterations":6`, 1))
	groups := GroupRuns([]*Run{a, c, b})
	if len(groups) != 2 || len(groups[0]) != 2 || groups[0][1] != b {
		t.Errorf("groups %v", groups)
	}
	cmp := Compare([]*Run{a, c, b}, true)
	keys := map[string]bool{}
	for _, d := range cmp.Config {
		keys[d.Key] = true
	}
	if !keys["master_seed"] || !keys["convergence.max_iterations"] || !keys["output.database"] || len(keys) != 3 {
		t.Errorf("config differences %v", keys)
	}
	if g := cmp.Groups[0]; g.FinalCost.N != 2 || g.FinalCost.Mean != 101.5 {
		t.Errorf("group %+v", g.FinalCost)
	}
}

func TestChartFormatsAndErrors(t *testing.T) {
	runs := []*Run{testRun(1, "a.db"), testRun(2, "a.db")}
	for _, format := range []string{"png", "svg"} {
		var b bytes.Buffer
		if err := Chart(&b, runs, format, ChartOptions{}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if b.Len() < 1000 {
			t.Errorf("%s chart is %d bytes", format, b.Len())
		}
	}
	var b bytes.Buffer
	if err := Chart(&b, runs, "svg", ChartOptions{Parameter: "-"}); err != nil || !strings.Contains(b.String(), "2 seeds mean") ||
		strings.Contains(b.String(), "initial_liquidity_fraction") {
		t.Errorf("costs-only chart of two seeds: %v", err)
	}
	for _, o := range []ChartOptions{{Agent: "Z"}, {Parameter: "nope"}} {
		if err := Chart(&b, runs, "png", o); !errors.Is(err, ErrBadArgument) {
			t.Errorf("Chart(%+v) = %v, want ErrBadArgument", o, err)
		}
	}
	if err := Chart(&b, runs, "gif", ChartOptions{}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("gif: %v", err)
	}
}
