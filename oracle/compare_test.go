package oracle

import (
	"strings"
	"testing"

	"simcash/sim"
)

func TestCompare(t *testing.T) {
	base := func() *Result {
		return &Result{Agents: map[string]AgentResult{
			"A": {Costs: sim.Costs{Delay: 5}, DailyCosts: []sim.Costs{{Delay: 2}, {Delay: 3}}, Arrivals: 2, Settled: 1, BalanceHistory: []int64{10, 20, 30}},
			"B": {BalanceHistory: []int64{0, 0, 0}},
		}}
	}
	cases := []struct {
		name  string
		edit  func(*Result)
		diffs []string
	}{
		{"equal", func(*Result) {}, nil},
		{"balance", func(r *Result) { a := r.Agents["A"]; a.BalanceHistory = []int64{10, 21, 31}; r.Agents["A"] = a },
			[]string{"A balance at tick 1: SimCash 20, ours 21"}},
		{"cost by day", func(r *Result) {
			a := r.Agents["A"]
			a.Costs.Delay, a.DailyCosts = 6, []sim.Costs{{Delay: 2}, {Delay: 4}}
			r.Agents["A"] = a
		}, []string{"A delay: SimCash 5, ours 6 (first differs on day 1)"}},
		{"counts", func(r *Result) { a := r.Agents["A"]; a.Arrivals, a.Settled = 3, 0; r.Agents["A"] = a },
			[]string{"A arrivals: SimCash 2, ours 3", "A settled: SimCash 1, ours 0"}},
		{"missing agent", func(r *Result) { delete(r.Agents, "B") }, []string{"B agent (missing from ours): SimCash 0, ours 0"}},
		{"earliest tick first", func(r *Result) {
			a, b := r.Agents["A"], r.Agents["B"]
			a.Settled, a.BalanceHistory = 9, []int64{10, 20, 31}
			b.BalanceHistory = []int64{1, 0, 0}
			r.Agents["A"], r.Agents["B"] = a, b
		}, []string{"B balance at tick 0: SimCash 0, ours 1", "A balance at tick 2: SimCash 30, ours 31", "A settled: SimCash 1, ours 9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := base()
			tc.edit(got)
			var s []string
			for _, d := range Compare(base(), got) {
				s = append(s, d.String())
			}
			if strings.Join(s, "\n") != strings.Join(tc.diffs, "\n") {
				t.Errorf("diffs\n%s\nwant\n%s", strings.Join(s, "\n"), strings.Join(tc.diffs, "\n"))
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	cases := []struct{ stderr, want string }{
		{"simcash-oracle: tick 1: Invalid config: Credit limit cannot go negative\n", "tick 1: Invalid config: Credit limit cannot go negative"},
		{"\nthread 'main' (1) panicked at simulator/src/models/transaction.rs:347:9:\namount must be positive\nnote: Some details are omitted\n", "panic: amount must be positive"},
		{"Traceback (most recent call last):\n  File \"convert.py\"\npydantic_core._pydantic_core.ValidationError: 1 validation error for SimulationConfig\nagents.0.arrival_config.counterparty_weights\n  Field required [type=missing]\nsimcash-oracle: config JSON: EOF\n",
			"schema: agents.0.arrival_config.counterparty_weights: Field required [type=missing]"},
		{"Traceback (most recent call last):\n  File \"convert.py\"\nKeyError: 'json_path'\nsimcash-oracle: config JSON: EOF\n", "config: KeyError: 'json_path'"},
	}
	for _, tc := range cases {
		if got := refusal(tc.stderr); got != tc.want {
			t.Errorf("refusal(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}
