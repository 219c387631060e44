package experiment

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"simcash/optimizer/search"
	"simcash/scenario"
	"simcash/schema"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	return filepath.Dir(dir)
}

func loadExperiment(t testing.TB, path string) *Runner {
	t.Helper()
	cfg, _, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scn, _, err := scenario.Load(cfg.ScenarioPath, scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(scn.Agents))
	for i, a := range scn.Agents {
		ids[i] = a.ID
	}
	if err := cfg.Validate(ids); err != nil {
		t.Fatal(err)
	}
	return &Runner{Config: cfg, Scenario: scn, Optimizer: search.New(), Sink: &Memory{}}
}

func TestExp1ReachesCastroEquilibrium(t *testing.T) {
	r := loadExperiment(t, filepath.Join(repoRoot(t), "testdata/experiments/exp1.yaml"))
	out, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a := out.FinalParams["BANK_A"]["initial_liquidity_fraction"]
	b := out.FinalParams["BANK_B"]["initial_liquidity_fraction"]
	if math.Abs(a-0.0) > 0.01 || math.Abs(b-0.2) > 0.01 {
		t.Fatalf("final fractions A=%v B=%v, want 0.0 and 0.2 (within 0.01); outcome %+v", a, b, out)
	}
	t.Logf("iterations %d converged %v (%s), final cost %d, A=%v B=%v", out.Iterations, out.Converged, out.Reason, out.FinalCost, a, b)
}

// stripVolatile removes what legitimately differs between two runs.
func stripVolatile(t *testing.T, recs []schema.Record) []string {
	var out []string
	for _, r := range recs {
		switch v := r.(type) {
		case *schema.Iteration:
			c := *v
			c.ExpID, c.Timestamp = "", time.Time{}
			b, _ := json.Marshal(c)
			out = append(out, string(b))
		case *schema.PolicyEvaluation:
			c := *v
			c.ExpID, c.Timestamp = "", time.Time{}
			b, _ := json.Marshal(c)
			out = append(out, string(b))
		}
	}
	return out
}

func TestSameSeedSameRecords(t *testing.T) {
	path := filepath.Join(repoRoot(t), "testdata/experiments/exp2.yaml")
	var runs [2][]string
	for k := range runs {
		r := loadExperiment(t, path)
		r.Config.Convergence.MaxIterations = 4
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		runs[k] = stripVolatile(t, r.Sink.(*Memory).Records)
	}
	if len(runs[0]) == 0 || !reflect.DeepEqual(runs[0], runs[1]) {
		t.Fatalf("records differ between identical runs:\n%v\n%v", runs[0], runs[1])
	}
}

func TestCancelRecordsInterrupted(t *testing.T) {
	r := loadExperiment(t, filepath.Join(repoRoot(t), "testdata/experiments/exp1.yaml"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Progress = func(p Progress) {
		if p.Iteration == 2 && p.Agent == "" {
			cancel()
		}
	}
	out, err := r.Run(ctx)
	if err == nil {
		t.Fatal("a cancelled run returned no error")
	}
	recs := r.Sink.(*Memory).Records
	done, ok := recs[len(recs)-1].(*schema.ExperimentCompleted)
	if !ok {
		t.Fatalf("last record is %T, want the completion", recs[len(recs)-1])
	}
	if done.Status != schema.StatusInterrupted || out.Status != schema.StatusInterrupted {
		t.Fatalf("status %q / %q, want interrupted", done.Status, out.Status)
	}
	if done.NumIterations != 2 {
		t.Errorf("interrupted after %d iterations, want 2", done.NumIterations)
	}
}

func TestMaxIterationsIsNotConverged(t *testing.T) {
	r := loadExperiment(t, filepath.Join(repoRoot(t), "testdata/experiments/exp2.yaml"))
	r.Config.Convergence.MaxIterations = 3
	out, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out.Converged || out.Reason != ReasonMaxIterations || out.Iterations != 3 {
		t.Fatalf("outcome converged=%v reason=%q iterations=%d, want not converged, max_iterations, 3", out.Converged, out.Reason, out.Iterations)
	}
	recs := r.Sink.(*Memory).Records
	done := recs[len(recs)-1].(*schema.ExperimentCompleted)
	if done.Converged || done.ConvergenceReason != ReasonMaxIterations {
		t.Fatalf("completion record %+v", done)
	}
}
