package sim

import (
	"slices"
	"testing"
)

// Where SimCash's engine fails the whole run, ours goes on as the package
// documentation says. Each case is one such input.
func TestWhereSimCashFails(t *testing.T) {
	t.Run("collateral post beyond capacity posts what fits", func(t *testing.T) {
		// SimCash: "tried to post 50000 collateral but only has 30000 capacity remaining".
		post := `{"version":"1.0","policy_id":"post","parameters":{},` +
			`"payment_tree":{"type":"action","node_id":"R","action":"Release"},` +
			`"strategic_collateral_tree":{"type":"action","node_id":"P","action":"PostCollateral","parameters":{"amount":{"value":50000}}}}`
		c := twoAgents(2, 1, AgentConfig{MaxCollateralCapacity: 40000, PostedCollateral: 10000, Policy: mustPolicy(t, post)}, AgentConfig{})
		c.Costs.CollateralCostPerTickBps = 1
		r := run(t, c)
		// 40000 posted from tick 0: (40000*1e6 + 5e9)/1e10 = 4 per tick
		if got := r.Agent("A").Costs.Collateral; got != 8 {
			t.Errorf("collateral cost %d, want 8 (40000 posted for two ticks)", got)
		}
	})
	t.Run("split into more parts than cents", func(t *testing.T) {
		// SimCash panics ("amount must be positive") on parts of 0 cents.
		split5 := `{"version":"1.0","policy_id":"split5","parameters":{},` +
			`"payment_tree":{"type":"action","node_id":"S","action":"Split","parameters":{"num_splits":{"value":5}}}}`
		c := twoAgents(2, 1, AgentConfig{OpeningBalance: 100, Policy: mustPolicy(t, split5)}, AgentConfig{}, txEvent(0, "A", "B", 3, 1))
		c.Costs.SplitFrictionCost = 10
		s := newSim(t, c)
		r := s.Run()
		var amounts []int64
		for _, tx := range s.Transactions() {
			amounts = append(amounts, tx.Amount)
		}
		if want := []int64{3, 1, 1, 1}; !slices.Equal(amounts, want) {
			t.Errorf("amounts %v, want %v (three one-cent parts)", amounts, want)
		}
		if a := r.Agent("A"); a.Costs.SplitFriction != 20 || a.Settled != 1 || a.FinalBalance != 97 {
			t.Errorf("A friction %d settled %d balance %d, want 20 1 97", a.Costs.SplitFriction, a.Settled, a.FinalBalance)
		}
	})
	t.Run("split with num_splits below 2 holds", func(t *testing.T) {
		// SimCash panics building the decision; ours counts a policy error.
		split1 := `{"version":"1.0","policy_id":"split1","parameters":{},` +
			`"payment_tree":{"type":"action","node_id":"S","action":"Split","parameters":{"num_splits":{"compute":{"op":"-","left":{"value":2},"right":{"value":1}}}}}}`
		c := twoAgents(2, 1, AgentConfig{OpeningBalance: 100, Policy: mustPolicy(t, split1)}, AgentConfig{}, txEvent(0, "A", "B", 50, 1))
		r := run(t, c)
		if r.PolicyErrors != 2 || r.Agent("A").FinalBalance != 100 {
			t.Errorf("policy errors %d, A balance %d; want 2 and 100 (held)", r.PolicyErrors, r.Agent("A").FinalBalance)
		}
	})
}
