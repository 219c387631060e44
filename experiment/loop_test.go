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
