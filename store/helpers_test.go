package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"simcash/schema"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func openTemp(t testing.TB) *Store {
	t.Helper()
	// The fixtures' times are in the past: a long lost-after keeps their
	// running experiments running (TestLost checks lost).
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sub", "all.db"), WithLogger(discardLogger()), WithLostAfter(1e6*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func msg(t testing.TB, r schema.Record) Message {
	t.Helper()
	b, err := schema.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return Message{Subject: schema.Subject(r), Data: b}
}

// experiment returns the records of one small experiment: started, iters
// iterations with two agents' evaluations and an event each, and, unless
// status is running, a completion.
func experiment(id, name, status string, iters int, start time.Time) []schema.Record {
	rs := []schema.Record{&schema.ExperimentStarted{ExpID: id, Name: name, Type: "generic",
		Config: json.RawMessage(`{"master_seed":42,"name":"` + name + `"}`), MasterSeed: 42, Scenario: "exp1.yaml",
		Model: "builtin:search", StartedAt: start, ProgramVersion: "test", Host: "host", ConfigHash: "h"}}
	for i := 1; i <= iters; i++ {
		rs = append(rs, &schema.Iteration{ExpID: id, Iteration: i, TotalCost: int64(1000 * (iters - i + 1)),
			AgentCosts:      map[string]int64{"BANK_A": int64(400 * i), "BANK_B": int64(600 * i)},
			Policies:        json.RawMessage(fmt.Sprintf(`{"BANK_A":{"parameters":{"initial_liquidity_fraction":%.2f}}}`, 0.5/float64(i))),
			AcceptedChanges: map[string]bool{"BANK_A": i%2 == 0, "BANK_B": false}, Timestamp: start.Add(time.Duration(i) * time.Second)})
		for _, a := range []string{"BANK_A", "BANK_B"} {
			rs = append(rs, &schema.PolicyEvaluation{ExpID: id, Iteration: i, Agent: a,
				ProposedPolicy: json.RawMessage(`{"parameters":{"initial_liquidity_fraction":0.25}}`),
				OldCost:        500, NewCost: 400, Delta: 100, Accepted: a == "BANK_A", Reason: "lower cost", NumSamples: 10,
				SampleDetails: json.RawMessage(`[{"sample":0,"delta":100}]`), Seed: int64(i), Timestamp: start})
		}
		rs = append(rs, &schema.Event{ExpID: id, Seq: int64(i), Iteration: i, EventType: "iteration_start",
			Data: json.RawMessage(`{"iteration":` + fmt.Sprint(i) + `}`), Timestamp: start})
	}
	if status != schema.StatusRunning {
		rs = append(rs, &schema.ExperimentCompleted{ExpID: id, CompletedAt: start.Add(time.Hour), Status: status,
			Converged: status == schema.StatusCompleted, ConvergenceReason: "stability", NumIterations: iters,
			FinalCost: 1000, BestCost: 900, FinalPolicies: json.RawMessage(`{"BANK_A":{"parameters":{"initial_liquidity_fraction":0.0}}}`),
			AgentFinalCosts: map[string]int64{"BANK_A": 400, "BANK_B": 600}, DurationSeconds: 3.5})
	}
	return rs
}

func msgs(t testing.TB, rs []schema.Record) []Message {
	out := make([]Message, len(rs))
	for i, r := range rs {
		out[i] = msg(t, r)
	}
	return out
}

// bigEvent returns an event whose encoded size is about size bytes.
func bigEvent(t testing.TB, id string, seq int64, size int) Message {
	pad := strings.Repeat("x", max(size-200, 0))
	return msg(t, &schema.Event{ExpID: id, Seq: seq, Iteration: 1, EventType: "llm_interaction",
		Data: json.RawMessage(`{"agent":"BANK_A","raw_response":"` + pad + `"}`), Timestamp: t0})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
