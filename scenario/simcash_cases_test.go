package scenario

import (
	"path/filepath"
	"slices"
	"testing"

	"simcash/sim"
)

// TestSimCashMinimalCases runs the six divergences once found between our
// engine and SimCash's (../shared/oracle/cases), rewritten as our own
// scenarios in testdata/simcash. The expected numbers were taken once from
// SimCash's engine (../shared/oracle/oracle.sh FILE), so this test needs no
// oracle. c06 is a run SimCash refuses ("Credit limit cannot go negative");
// the numbers are our documented behaviour: the cap stops at zero.
func TestSimCashMinimalCases(t *testing.T) {
	type agent struct {
		balances          []int64
		costs             sim.Costs
		arrivals, settled int
	}
	cases := []struct {
		file string
		a, b agent
	}{
		{"c01_overdue_in_q2_settles.yaml",
			agent{[]int64{0, 0, 10000, 10000, 10000}, sim.Costs{}, 1, 1},
			agent{[]int64{100000, 100000, 90000, 90000, 90000}, sim.Costs{}, 0, 0}},
		{"c02_pool_fraction_by_day.yaml",
			agent{[]int64{1000000, 1000000, 0, 500000, 500000, 0}, sim.Costs{Liquidity: 4500}, 0, 0},
			agent{[]int64{400000, 400000, 0, 1000000, 1000000, 0}, sim.Costs{Liquidity: 4200}, 0, 0}},
		{"c03_agent_rate_compounds.yaml",
			agent{[]int64{998690, 995608, 995608, 994341, 992707, 992707, 987917, 987917}, sim.Costs{}, 8, 8},
			agent{[]int64{1310, 4392, 4392, 5659, 7293, 7293, 12083, 12083}, sim.Costs{}, 0, 0}},
		{"c04_scheduled_settlement_unfunded.yaml",
			agent{[]int64{0, 0, 0, 50000, 50000, 50000}, sim.Costs{}, 0, 0},
			agent{[]int64{100000, 100000, 100000, 50000, 50000, 50000}, sim.Costs{}, 0, 0}},
		{"c05_split_not_divisible.yaml",
			agent{[]int64{60000, 60000, 60000}, sim.Costs{SplitFriction: 1000}, 1, 1},
			agent{[]int64{40000, 40000, 40000}, sim.Costs{}, 0, 0}},
		{"c06_credit_below_zero.yaml",
			agent{[]int64{-4000, -4000, -4000}, sim.Costs{}, 1, 1},
			agent{[]int64{5000, 5000, 5000}, sim.Costs{}, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			cfg, _, err := Load(filepath.Join("testdata", "simcash", tc.file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := sim.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := s.Run()
			for id, want := range map[string]agent{"A": tc.a, "B": tc.b} {
				got := r.Agent(id)
				if !slices.Equal(got.BalanceHistory, want.balances) {
					t.Errorf("%s balances %v, SimCash %v", id, got.BalanceHistory, want.balances)
				}
				if got.Costs != want.costs {
					t.Errorf("%s costs %+v, SimCash %+v", id, got.Costs, want.costs)
				}
				if got.Arrivals != want.arrivals || got.Settled != want.settled {
					t.Errorf("%s arrivals/settled %d/%d, SimCash %d/%d", id, got.Arrivals, got.Settled, want.arrivals, want.settled)
				}
			}
		})
	}
}
