package experiment

import "testing"

// observeAll feeds costs and params to a detector and returns the 1-based
// observation at which it first reported convergence (0: never) and why.
func observeAll(d Detector, costs []int64, params []map[string]map[string]float64) (int, string) {
	for i, c := range costs {
		var p map[string]map[string]float64
		if params != nil {
			p = params[i]
		}
		if ok, reason := d.Observe(c, p); ok {
			return i + 1, reason
		}
	}
	return 0, ""
}

var defaults = ConvergenceConfig{MaxIterations: 50, StabilityThreshold: 0.05, StabilityWindow: 3, CVThreshold: 0.03,
	RegretThreshold: 0.10, ImprovementThreshold: 0.01}

func TestDeterministicDetector(t *testing.T) {
	tests := []struct {
		name  string
		costs []int64
		at    int
	}{
		{"settles after a big drop", []int64{1000, 900, 890, 880, 875, 875}, 5},
		{"zero costs are stable", []int64{0, 0, 0, 0}, 4},
		{"leaving zero is a change", []int64{0, 0, 0, 10, 10, 10}, 0},
		{"one big change restarts the window", []int64{100, 100, 100, 50, 50, 50, 50}, 7},
		{"needs window+1 costs", []int64{100, 100, 100}, 0},
		{"change of exactly the threshold counts as stable", []int64{100, 105, 105, 105}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []string{ModeDeterministic, "deterministic-pairwise"} {
				at, reason := observeAll(NewDetector(mode, defaults), tt.costs, nil)
				if at != tt.at {
					t.Errorf("%s: converged at %d, want %d", mode, at, tt.at)
				}
				if at != 0 && reason != ReasonStableCosts {
					t.Errorf("%s: reason %q", mode, reason)
				}
			}
		})
	}
}

func fractions(pairs ...[2]float64) []map[string]map[string]float64 {
	out := make([]map[string]map[string]float64, len(pairs))
	for i, p := range pairs {
		out[i] = map[string]map[string]float64{
			"A": {TemporalParameter: p[0], "other": float64(i)},
			"B": {TemporalParameter: p[1]},
		}
	}
	return out
}

func TestTemporalDetector(t *testing.T) {
	tests := []struct {
		name   string
		params []map[string]map[string]float64
		at     int
	}{
		{"stable within tolerance", fractions([2]float64{0.5, 0.5}, [2]float64{0.2, 0}, [2]float64{0.2005, 0}, [2]float64{0.2, 0}), 4},
		{"one agent still moving", fractions([2]float64{0.2, 0.5}, [2]float64{0.2, 0.4}, [2]float64{0.2, 0.3}, [2]float64{0.2, 0.2}), 0},
		{"move just above tolerance", fractions([2]float64{0.2, 0}, [2]float64{0.2011, 0}, [2]float64{0.2, 0}), 0},
		{"parameter missing", []map[string]map[string]float64{{"A": {}}, {"A": {}}, {"A": {}}}, 0},
		{"no agents", []map[string]map[string]float64{nil, nil, nil}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			costs := make([]int64, len(tt.params))
			for i := range costs {
				costs[i] = int64(1000 * (i + 1)) // costs must not matter
			}
			at, reason := observeAll(NewDetector(ModeTemporal, defaults), costs, tt.params)
			if at != tt.at {
				t.Errorf("converged at %d, want %d", at, tt.at)
			}
			if at != 0 && reason != ReasonStableParameters {
				t.Errorf("reason %q", reason)
			}
		})
	}
}

func TestBootstrapDetector(t *testing.T) {
	cfg := defaults
	cfg.StabilityWindow = 5
	tests := []struct {
		name  string
		costs []int64
		at    int
	}{
		{"stable costs", []int64{1000, 1001, 999, 1000, 1000}, 5},
		{"small steady trend is not convergence", []int64{1000, 1001, 1002, 1003, 1004, 1005}, 0},
		{"too much variation", []int64{1000, 1500, 900, 1400, 1000}, 0},
		{"far above the best cost seen", []int64{500, 1000, 1001, 999, 1000, 1000}, 0},
		{"within regret of the best", []int64{950, 1000, 1001, 999, 1000}, 5},
		{"constant zero", []int64{0, 0, 0, 0, 0}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, reason := observeAll(NewDetector(ModeBootstrap, cfg), tt.costs, nil)
			if at != tt.at {
				t.Errorf("converged at %d, want %d", at, tt.at)
			}
			if at != 0 && reason != ReasonBootstrapStability {
				t.Errorf("reason %q", reason)
			}
		})
	}
}
