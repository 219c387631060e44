package experiment

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"simcash/policy"
)

// BenchmarkExperimentExp2 runs the project's Castro exp2 (bootstrap) with
// builtin:search for exactly 25 iterations of 50 samples each, the
// reference settings, and reports the wall time of one whole experiment.
// Target: at most 2 s per experiment.
func BenchmarkExperimentExp2(b *testing.B) {
	path := filepath.Join(repoRoot(b), "testdata/experiments/exp2.yaml")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r := loadExperiment(b, path)
		r.Config.Evaluation.Mode = ModeBootstrap
		r.Config.Evaluation.NumSamples = 50
		r.Config.Convergence.MaxIterations = 25
		// Never stop early: the figure is for 25 full iterations.
		r.Config.Convergence.StabilityWindow = 26
		b.StartTimer()
		out, err := r.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if out.Iterations != 25 {
			b.Fatalf("ran %d iterations, want 25", out.Iterations)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/experiment")
}

// BenchmarkBootstrapScaling evaluates exp2's bootstrap samples (500 per op)
// with one worker and with one per core, and reports samples per second
// for each; the costs are checked equal.
func BenchmarkBootstrapScaling(b *testing.B) {
	r := loadExperiment(b, filepath.Join(repoRoot(b), "testdata/experiments/exp2.yaml"))
	e := &evaluator{scn: r.Scenario, ticks: r.Config.Evaluation.Ticks, samples: 500}
	pols := map[string]*policy.Policy{}
	for _, a := range r.Config.OptimizedAgents {
		p, err := policy.Parse(DefaultPolicyJSON(true))
		if err != nil {
			b.Fatal(err)
		}
		pols[a] = p
	}
	ctxSim, _, err := e.simulate(pols, 42)
	if err != nil {
		b.Fatal(err)
	}
	set, err := e.buildSamples(ctxSim, "BANK_A", 7)
	if err != nil {
		b.Fatal(err)
	}
	var want []int64
	for _, workers := range []int{1, 0} {
		name := "workers=1"
		if workers == 0 {
			name = fmt.Sprintf("workers=%d", runtime.GOMAXPROCS(0))
		}
		b.Run(name, func(b *testing.B) {
			e.workers = workers
			for b.Loop() {
				got, err := e.costs(set, pols["BANK_A"])
				if err != nil {
					b.Fatal(err)
				}
				if want == nil {
					want = got
				} else if !slices.Equal(got, want) {
					b.Fatal("costs depend on the number of workers")
				}
			}
			b.ReportMetric(float64(b.N*len(set.configs))/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
