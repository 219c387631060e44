package search

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"simcash/optimizer"
)

func ptr(f float64) *float64 { return &f }

var fractionParam = optimizer.AllowedParameter{
	Name: "initial_liquidity_fraction", Type: "float", Min: ptr(0), Max: ptr(1),
}

// policyJSON builds a minimal policy document with a payment tree, so tests
// can check that trees survive a proposal untouched.
func policyJSON(t *testing.T, params map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"version":      "1.0",
		"parameters":   params,
		"payment_tree": map[string]any{"type": "action", "node_id": "P1", "action": "Release"},
		"bank_tree":    map[string]any{"type": "action", "node_id": "B1", "action": "NoAction"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func paramsOf(t *testing.T, policy json.RawMessage) map[string]any {
	t.Helper()
	p, err := parameters(policy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fraction(t *testing.T, policy json.RawMessage) float64 {
	t.Helper()
	f, ok := paramsOf(t, policy)["initial_liquidity_fraction"].(float64)
	if !ok {
		t.Fatalf("policy %s has no numeric initial_liquidity_fraction", policy)
	}
	return f
}

// agentState is one agent in a simulated loop.
type agentState struct {
	name    string
	policy  json.RawMessage
	history []optimizer.HistoryEntry
}

// runLoop simulates the experiment loop's accept-if-cheaper rule: each
// iteration every agent in turn proposes, and the proposal is kept when it
// is strictly cheaper with the others' current policies fixed. cost gets
// the agent index and every agent's fraction.
func runLoop(t *testing.T, agents []*agentState, params []optimizer.AllowedParameter, iterations int,
	cost func(agent int, policies []json.RawMessage) int64) {
	t.Helper()
	opt := New()
	for it := 1; it <= iterations; it++ {
		for i, a := range agents {
			policies := make([]json.RawMessage, len(agents))
			for j, b := range agents {
				policies[j] = b.policy
			}
			oldCost := cost(i, policies)
			prop, err := opt.Propose(context.Background(), optimizer.Request{
				Agent: a.name, Iteration: it, Attempt: 1, CurrentPolicy: a.policy,
				Constraints: optimizer.Constraints{Parameters: params}, History: a.history,
			})
			if err != nil {
				t.Fatalf("iteration %d agent %s: %v", it, a.name, err)
			}
			if string(prop.Policy) == string(a.policy) {
				continue // the loop records "no change"
			}
			for _, h := range a.history {
				if !h.Accepted && string(h.Policy) == string(prop.Policy) {
					t.Fatalf("iteration %d agent %s: re-proposed rejected policy %s", it, a.name, prop.Policy)
				}
			}
			policies[i] = prop.Policy
			newCost := cost(i, policies)
			accepted := newCost < oldCost
			a.history = append(a.history, optimizer.HistoryEntry{
				Iteration: it, Policy: prop.Policy, OldCost: oldCost, NewCost: newCost, Accepted: accepted,
			})
			if accepted {
				a.policy = prop.Policy
			}
			t.Logf("it %d %s proposed %v old %d new %d accepted %v", it, a.name, paramsOf(t, prop.Policy), oldCost, newCost, accepted)
		}
	}
}

// exp1Cost mimics Castro exp1: A pays only the liquidity cost when B's first
// payment arrives in time (B >= 0.15); B's delay cost jumps below 0.2.
func exp1Cost(t *testing.T) func(int, []json.RawMessage) int64 {
	return func(agent int, policies []json.RawMessage) int64 {
		fa, fb := fraction(t, policies[0]), fraction(t, policies[1])
		if agent == 0 {
			c := int64(math.Round(10000 * fa))
			if fb < 0.15 {
				c += 6000
			}
			return c
		}
		c := int64(math.Round(10000 * fb))
		switch {
		case fb < 0.15:
			c += 9000
		case fb < 0.2:
			c += 3000
		}
		return c
	}
}

func TestReachesExp1Equilibrium(t *testing.T) {
	start := map[string]any{"initial_liquidity_fraction": 0.5}
	agents := []*agentState{
		{name: "BANK_A", policy: policyJSON(t, start)},
		{name: "BANK_B", policy: policyJSON(t, start)},
	}
	runLoop(t, agents, []optimizer.AllowedParameter{fractionParam}, 25, exp1Cost(t))
	fa, fb := fraction(t, agents[0].policy), fraction(t, agents[1].policy)
	if math.Abs(fa-0.0) > 0.01 || math.Abs(fb-0.2) > 0.01 {
		t.Fatalf("after 25 iterations A=%v B=%v, want A=0.0 B=0.2 within 0.01", fa, fb)
	}
	if fb < 0.2 {
		t.Fatalf("B=%v accepted a value below the cliff", fb)
	}
}

func TestConvexAndStepFunctions(t *testing.T) {
	tests := []struct {
		name  string
		start float64
		cost  func(f float64) float64
		want  float64
		iters int
	}{
		{"convex optimum inside", 0.5, func(f float64) float64 { return (f - 0.37) * (f - 0.37) }, 0.37, 30},
		{"convex optimum above start", 0.2, func(f float64) float64 { return (f - 0.81) * (f - 0.81) }, 0.81, 30},
		{"step with cliff at 0.2", 0.5, func(f float64) float64 {
			if f < 0.2 {
				return 100 + f
			}
			return f
		}, 0.2, 20},
		{"linear optimum at upper bound", 0.5, func(f float64) float64 { return -f }, 1.0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agents := []*agentState{{name: "A", policy: policyJSON(t, map[string]any{"initial_liquidity_fraction": tt.start})}}
			runLoop(t, agents, []optimizer.AllowedParameter{fractionParam}, tt.iters, func(_ int, p []json.RawMessage) int64 {
				return int64(math.Round(1e6 * tt.cost(fraction(t, p[0]))))
			})
			if got := fraction(t, agents[0].policy); math.Abs(got-tt.want) > 0.01 {
				t.Fatalf("reached %v, want %v within 0.01", got, tt.want)
			}
		})
	}
}

func TestIntAndEnumParameters(t *testing.T) {
	params := []optimizer.AllowedParameter{
		{Name: "threshold", Type: "int", Min: ptr(0), Max: ptr(100)},
		{Name: "mode", Type: "enum", AllowedValues: []any{"slow", "fast", "balanced"}},
	}
	agents := []*agentState{{name: "A", policy: policyJSON(t, map[string]any{"threshold": 50, "mode": "slow"})}}
	runLoop(t, agents, params, 40, func(_ int, p []json.RawMessage) int64 {
		m := paramsOf(t, p[0])
		th := m["threshold"].(float64)
		if th != math.Trunc(th) {
			t.Fatalf("int parameter got non-integer %v", th)
		}
		c := int64((th - 37) * (th - 37))
		if m["mode"] != "balanced" {
			c += 500
		}
		return c
	})
	m := paramsOf(t, agents[0].policy)
	if m["threshold"] != 37.0 || m["mode"] != "balanced" {
		t.Fatalf("reached %v, want threshold 37 and mode balanced", m)
	}
}

func TestKeepsTreesAndOtherKeys(t *testing.T) {
	cur := policyJSON(t, map[string]any{"initial_liquidity_fraction": 0.5, "other": 3})
	prop, err := New().Propose(context.Background(), optimizer.Request{
		Agent: "A", CurrentPolicy: cur, Constraints: optimizer.Constraints{Parameters: []optimizer.AllowedParameter{fractionParam}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := json.Unmarshal(cur, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(prop.Policy, &after); err != nil {
		t.Fatal(err)
	}
	beforeParams := before["parameters"].(map[string]any)
	afterParams := after["parameters"].(map[string]any)
	if afterParams["initial_liquidity_fraction"] != 0.0 || afterParams["other"] != 3.0 {
		t.Errorf("parameters = %v, want fraction probed at lower bound 0 and other kept", afterParams)
	}
	delete(before, "parameters")
	delete(after, "parameters")
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if string(b1) != string(b2) {
		t.Errorf("non-parameter content changed:\n%s\n%s", b1, b2)
	}
	if beforeParams["initial_liquidity_fraction"] != 0.5 {
		t.Errorf("input policy was modified")
	}
	if prop.Interaction != nil {
		t.Errorf("builtin optimizer must not report an LLM interaction")
	}
}

func TestUnchangedWhenExhaustedOrRetrying(t *testing.T) {
	cur := policyJSON(t, map[string]any{"initial_liquidity_fraction": 0.2})
	at := func(f float64) json.RawMessage { return policyJSON(t, map[string]any{"initial_liquidity_fraction": f}) }
	exhausted := []optimizer.HistoryEntry{
		{Policy: at(0.1995), Accepted: false},
		{Policy: at(0.2005), Accepted: false},
	}
	tests := []struct {
		name string
		req  optimizer.Request
	}{
		{"both sides within resolution", optimizer.Request{History: exhausted}},
		{"retry after validation errors", optimizer.Request{PreviousErrors: []string{"bad"}, Attempt: 2}},
		{"no allowed parameters", optimizer.Request{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.CurrentPolicy = cur
			if tt.name != "no allowed parameters" {
				tt.req.Constraints.Parameters = []optimizer.AllowedParameter{fractionParam}
			}
			prop, err := New().Propose(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if string(prop.Policy) != string(cur) {
				t.Fatalf("proposed %s, want the current policy unchanged", prop.Policy)
			}
		})
	}
}

func TestHistoryParamsFallback(t *testing.T) {
	// An entry with only Params (no policy document) still counts as tried.
	cur := policyJSON(t, map[string]any{"initial_liquidity_fraction": 0.5})
	prop, err := New().Propose(context.Background(), optimizer.Request{
		CurrentPolicy: cur,
		Constraints:   optimizer.Constraints{Parameters: []optimizer.AllowedParameter{fractionParam}},
		History: []optimizer.HistoryEntry{
			{Params: map[string]float64{"initial_liquidity_fraction": 0}, Accepted: false},
			{Params: map[string]float64{"initial_liquidity_fraction": 1}, Accepted: false},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fraction(t, prop.Policy); got != 0.25 {
		t.Fatalf("proposed %v, want bisection 0.25 after both bounds were rejected", got)
	}
}

func TestBadPolicy(t *testing.T) {
	_, err := New().Propose(context.Background(), optimizer.Request{
		Agent: "A", CurrentPolicy: json.RawMessage(`[1,2]`),
		Constraints: optimizer.Constraints{Parameters: []optimizer.AllowedParameter{fractionParam}},
	})
	if err == nil {
		t.Fatal("want an error for a policy that is not a JSON object")
	}
}
