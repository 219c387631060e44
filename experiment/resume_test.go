package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"simcash/schema"
)

// keyed strips ids and times and indexes records by their message id, as the
// store deduplicates them.
func keyed(t *testing.T, recs []schema.Record) map[string]string {
	out := map[string]string{}
	for _, r := range recs {
		var b []byte
		switch v := r.(type) {
		case *schema.Iteration:
			c := *v
			c.ExpID, c.Timestamp = "", time.Time{}
			b, _ = json.Marshal(c)
		case *schema.PolicyEvaluation:
			c := *v
			c.ExpID, c.Timestamp = "", time.Time{}
			b, _ = json.Marshal(c)
		case *schema.Event:
			c := *v
			c.ExpID, c.Timestamp = "", time.Time{}
			b, _ = json.Marshal(c)
		case *schema.ExperimentCompleted:
			c := *v
			c.ExpID, c.CompletedAt, c.DurationSeconds = "", time.Time{}, 0
			b, _ = json.Marshal(c)
		default:
			continue
		}
		if _, dup := out[schema.MsgID(r)]; !dup { // the store keeps the first
			out[schema.MsgID(r)] = string(b)
		}
	}
	return out
}

// TestResumeEqualsUninterrupted cuts a run after each of several records,
// resumes it from what was published until then, and checks that the
// stored records (first copy of each key) equal the uninterrupted run's.
func TestResumeEqualsUninterrupted(t *testing.T) {
	for _, file := range []string{"exp1.yaml", "exp2.yaml"} {
		path := filepath.Join(repoRoot(t), "testdata/experiments", file)
		full := loadExperiment(t, path)
		full.Config.Convergence.MaxIterations = 8
		full.ID = "run-1"
		if _, err := full.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		all := full.Sink.(*Memory).Records
		want := keyed(t, all)
		for _, cut := range []int{3, len(all) / 3, len(all) / 2, len(all) - 5} {
			cp, _ := CheckpointFrom("run-1", all[:cut])
			r := loadExperiment(t, path)
			r.Config.Convergence.MaxIterations = 8
			r.Resume = cp
			if _, err := r.Run(context.Background()); err != nil {
				t.Fatalf("%s cut at %d: %v", file, cut, err)
			}
			got := keyed(t, append(append([]schema.Record{}, all[:cut]...), r.Sink.(*Memory).Records...))
			if !reflect.DeepEqual(got, want) {
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s cut at record %d of %d (%d iterations stored): %s\n got %s\nwant %s", file, cut, len(all), cp.done(), k, got[k], v)
						break
					}
				}
				if len(got) != len(want) {
					t.Errorf("%s cut at %d: %d records, want %d", file, cut, len(got), len(want))
				}
			}
		}
	}
}

func TestResumeRefusesOldRecords(t *testing.T) {
	r := loadExperiment(t, filepath.Join(repoRoot(t), "testdata/experiments/exp1.yaml"))
	pols, _ := json.Marshal(map[string]json.RawMessage{"BANK_A": DefaultPolicyJSON(true), "BANK_B": DefaultPolicyJSON(true)})
	r.Resume = &Checkpoint{ID: "old-1", Iterations: []schema.Iteration{{ExpID: "old-1", Iteration: 1, Policies: pols}},
		Evaluations: []schema.PolicyEvaluation{{ExpID: "old-1", Iteration: 1, Agent: "BANK_A"}, {ExpID: "old-1", Iteration: 1, Agent: "BANK_B"}}}
	if _, err := r.Run(context.Background()); !errors.Is(err, ErrNotResumable) {
		t.Errorf("resume of records without reason codes: %v, want ErrNotResumable", err)
	}
}
