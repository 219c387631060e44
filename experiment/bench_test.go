package experiment

import (
	"context"
	"path/filepath"
	"testing"
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
