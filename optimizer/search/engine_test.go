package search

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"simcash/optimizer"
	"simcash/policy"
	"simcash/scenario"
	"simcash/sim"
)

// TestExp1OnEngine runs builtin:search against the real settlement engine
// on the reference Castro exp1 scenario, with the deterministic loop's
// accept-if-cheaper rule, and expects the equilibrium A = 0.0, B = 0.2.
func TestExp1OnEngine(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "simcash", "castro", "configs", "exp1_2period.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("reference scenario not available at %s: %v", path, err)
	}
	cfg, _, err := scenario.Load(path, scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := json.RawMessage(`{"version":"1.0","policy_id":"start","parameters":{"initial_liquidity_fraction":0.5},` +
		`"payment_tree":{"type":"action","node_id":"P","action":"Release"},` +
		`"bank_tree":{"type":"action","node_id":"B","action":"NoAction"}}`)
	ids := []string{"BANK_A", "BANK_B"}
	docs := map[string]json.RawMessage{"BANK_A": start, "BANK_B": start}
	history := map[string][]optimizer.HistoryEntry{}

	cost := func(docs map[string]json.RawMessage, agent string) int64 {
		c := *cfg
		c.Agents = append([]sim.AgentConfig(nil), cfg.Agents...)
		for i := range c.Agents {
			if d, ok := docs[c.Agents[i].ID]; ok {
				p, err := policy.Parse(d)
				if err != nil {
					t.Fatalf("policy %s: %v", d, err)
				}
				c.Agents[i].UsePolicy(p)
			}
		}
		s, err := sim.New(&c)
		if err != nil {
			t.Fatal(err)
		}
		return s.Run().Agent(agent).Costs.Total()
	}

	opt := New()
	constraints := optimizer.Constraints{Parameters: []optimizer.AllowedParameter{fractionParam}}
	for it := 1; it <= 25; it++ {
		for _, id := range ids {
			old := cost(docs, id)
			prop, err := opt.Propose(context.Background(), optimizer.Request{
				Agent: id, Iteration: it, Attempt: 1, CurrentPolicy: docs[id], Constraints: constraints, History: history[id],
			})
			if err != nil {
				t.Fatal(err)
			}
			if string(prop.Policy) == string(docs[id]) {
				continue
			}
			trial := map[string]json.RawMessage{}
			for k, v := range docs {
				trial[k] = v
			}
			trial[id] = prop.Policy
			nc := cost(trial, id)
			history[id] = append(history[id], optimizer.HistoryEntry{
				Iteration: it, Policy: prop.Policy, OldCost: old, NewCost: nc, Accepted: nc < old,
				Reason: fmt.Sprintf("delta %d", old-nc),
			})
			if nc < old {
				docs[id] = prop.Policy
			}
		}
	}
	fa, fb := fraction(t, docs["BANK_A"]), fraction(t, docs["BANK_B"])
	if math.Abs(fa-0.0) > 0.01 || math.Abs(fb-0.2) > 0.01 {
		t.Fatalf("after 25 iterations A=%v B=%v, want A=0.0 B=0.2 within 0.01", fa, fb)
	}
	t.Logf("A=%v (cost %d) B=%v (cost %d)", fa, cost(docs, "BANK_A"), fb, cost(docs, "BANK_B"))
}
