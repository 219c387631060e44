package experiment

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"simcash/optimizer/search"
	"simcash/scenario"
	"simcash/schema"
)

// referenceDir is where the reference system's Castro experiments live
// beside the repository (../shared); tests using it skip when it is absent.
func referenceDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "simcash", "castro", "experiments")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("reference experiments not available at %s: %v", dir, err)
	}
	return dir
}

// TestReferenceExperimentsRunWithSearch loads SimCash's own Castro
// experiment files unchanged, swaps their language model for builtin:search
// (as `runner run --model builtin:search` does) and runs them to completion.
func TestReferenceExperimentsRunWithSearch(t *testing.T) {
	dir := referenceDir(t)
	for _, name := range []string{"exp1", "exp2", "exp3"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".yaml")
			cfg, warns, err := Load(path, LoadOptions{})
			if err != nil {
				t.Fatalf("reference file does not load unchanged: %v", err)
			}
			for _, w := range warns {
				t.Logf("warning: %s", w)
			}
			if err := cfg.ApplyOverrides(Overrides{Model: "builtin:search"}); err != nil {
				t.Fatal(err)
			}
			if cfg.LLM.Model != "builtin:search" || cfg.LLM.Provider != "builtin" {
				t.Fatalf("model after override = %q (provider %q)", cfg.LLM.Model, cfg.LLM.Provider)
			}
			scn, _, err := scenario.Load(cfg.ScenarioPath, scenario.Options{})
			if err != nil {
				t.Fatalf("reference scenario %s: %v", cfg.ScenarioPath, err)
			}
			ids := make([]string, len(scn.Agents))
			for i, a := range scn.Agents {
				ids[i] = a.ID
			}
			if err := cfg.Validate(ids); err != nil {
				t.Fatal(err)
			}
			mem := &Memory{}
			r := &Runner{Config: cfg, Scenario: scn, Optimizer: search.New(), Sink: mem}
			start := time.Now()
			out, err := r.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("%s (%s, %d samples): %d iterations in %v, converged %v (%s), final cost %d, params %v",
				name, cfg.Evaluation.Mode, cfg.Evaluation.NumSamples, out.Iterations, took, out.Converged, out.Reason, out.FinalCost, out.FinalParams)

			done, ok := mem.Records[len(mem.Records)-1].(*schema.ExperimentCompleted)
			if !ok {
				t.Fatalf("last record is %T, want *schema.ExperimentCompleted", mem.Records[len(mem.Records)-1])
			}
			if done.Status != schema.StatusCompleted || out.Status != schema.StatusCompleted {
				t.Fatalf("status %q / %q, want completed (reason %q)", done.Status, out.Status, done.ConvergenceReason)
			}
			if out.Iterations < 1 || out.Iterations > cfg.Convergence.MaxIterations {
				t.Errorf("%d iterations, want 1..%d", out.Iterations, cfg.Convergence.MaxIterations)
			}
			if iters := countIterations(mem.Records); iters != out.Iterations {
				t.Errorf("%d iteration records, outcome says %d", iters, out.Iterations)
			}
			if name == "exp1" {
				a := out.FinalParams["BANK_A"]["initial_liquidity_fraction"]
				b := out.FinalParams["BANK_B"]["initial_liquidity_fraction"]
				if math.Abs(a-0.0) > 0.01 || math.Abs(b-0.2) > 0.01 {
					t.Errorf("final fractions A=%v B=%v, want 0.0 and 0.2 (within 0.01)", a, b)
				}
			}
			// Speed is BenchmarkExperimentExp2's job; on shared CI cores a
			// wall-clock limit here would only flake.
		})
	}
}

func countIterations(recs []schema.Record) int {
	n := 0
	for _, r := range recs {
		if _, ok := r.(*schema.Iteration); ok {
			n++
		}
	}
	return n
}
