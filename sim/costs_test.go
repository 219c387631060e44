package sim

import (
	"slices"
	"testing"
)

func TestLiquidityCost(t *testing.T) {
	cases := []struct {
		name     string
		fraction float64
		perTick  int64
	}{
		// allocated = floor(20000*0.75) = 15000; (15000*round(7*1e6) + 5e9)/1e10 = (1.05e11+5e9)/1e10 = 11
		{"three quarters", 0.75, 11},
		// allocated = floor(20000*0.5) = 10000; (10000*7e6 + 5e9)/1e10 = 7.5e10/1e10 = 7
		{"half", 0.5, 7},
		// nothing allocated, nothing charged
		{"zero", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := twoAgents(3, 1, AgentConfig{LiquidityPool: 20000, Policy: releaseAll(t, tc.fraction), LiquidityAllocationFraction: ptrF(tc.fraction)}, AgentConfig{})
			c.Costs.LiquidityCostPerTickBps = 7
			r := run(t, c)
			a := r.Agent("A")
			// charged every tick whether used or not: 3 ticks
			if want := (Costs{Liquidity: 3 * tc.perTick}); a.Costs != want {
				t.Errorf("costs %+v, want %+v", a.Costs, want)
			}
			alloc := int64(20000 * tc.fraction)
			// the pool is in the balance during the day and taken back at the last tick
			if want := []int64{alloc, alloc, 0}; !slices.Equal(a.BalanceHistory, want) {
				t.Errorf("balances %v, want %v", a.BalanceHistory, want)
			}
			if r.Agent("B").Costs.Total() != 0 {
				t.Errorf("B charged %+v", r.Agent("B").Costs)
			}
		})
	}
}

func TestOverdraftCost(t *testing.T) {
	// A pays 15000 at tick 0 on credit exactly equal to the payment (x <= available settles).
	c := twoAgents(3, 1, AgentConfig{UnsecuredCap: 15000}, AgentConfig{}, txEvent(0, "A", "B", 15000, 5))
	c.Costs.OverdraftBpsPerTick = 1
	r := run(t, c)
	a := r.Agent("A")
	// (15000 * round(1*1000) + 5e6)/1e7 = 2e7/1e7 = 2 per tick (1.5 rounded half up), 3 ticks
	if want := (Costs{Overdraft: 6}); a.Costs != want {
		t.Errorf("A costs %+v, want %+v", a.Costs, want)
	}
	if want := []int64{-15000, -15000, -15000}; !slices.Equal(a.BalanceHistory, want) {
		t.Errorf("A balances %v, want %v", a.BalanceHistory, want)
	}
	if a.Settled != 1 || r.Agent("B").FinalBalance != 15000 {
		t.Errorf("A settled %d, B balance %d; want 1, 15000", a.Settled, r.Agent("B").FinalBalance)
	}
	// a positive balance is never charged
	if r.Agent("B").Costs.Total() != 0 {
		t.Errorf("B charged %+v", r.Agent("B").Costs)
	}
}

func TestCollateralCostAndOverdraftCapacity(t *testing.T) {
	// allowed overdraft = floor(30000*(1-0.5)) + 0 = 15000: 15000 settles at tick 0,
	// then 1 more cent at tick 1 does not fit.
	c := twoAgents(2, 1, AgentConfig{PostedCollateral: 30000, CollateralHaircut: 0.5}, AgentConfig{},
		txEvent(0, "A", "B", 15000, 5), txEvent(1, "A", "B", 1, 5))
	c.Costs.CollateralCostPerTickBps = 0.5
	s := newSim(t, c)
	r := s.Run()
	// (30000 * round(0.5*1e6) + 5e9)/1e10 = (1.5e10+5e9)/1e10 = 2 per tick, 2 ticks
	if want := (Costs{Collateral: 4}); r.Agent("A").Costs != want {
		t.Errorf("A costs %+v, want %+v", r.Agent("A").Costs, want)
	}
	txs := s.Transactions()
	if txs[0].Status != TxSettled || txs[1].Status != TxPending {
		t.Errorf("statuses %v %v, want settled, pending", txs[0].Status, txs[1].Status)
	}
	if got := r.Agent("A").FinalBalance; got != -15000 {
		t.Errorf("A final balance %d, want -15000", got)
	}
}

func TestDelayCost(t *testing.T) {
	type tx struct {
		amount   int64
		deadline int
		priority int
	}
	cases := []struct {
		name  string
		tpd   int
		txs   []tx
		ovd   float64
		prio  *PriorityDelayMultipliers
		delay int64
	}{
		// (15000 * 1000 * round(0.0001*1e6) + 5e8)/1e9 = (1.5e9+5e8)/1e9 = 2 per tick; deadline capped at 5, never overdue; 5 ticks
		{"held payment", 5, []tx{{15000, 10, 5}}, 5, nil, 10},
		// summed before rounding: ((15000+15000)*1000*100 + 5e8)/1e9 = 3 per tick (not 2+2); 5 ticks
		{"sum then round", 5, []tx{{15000, 10, 5}, {15000, 10, 5}}, 5, nil, 15},
		// deadline 2: ticks 0-2 at 2; ticks 3-4 overdue, m = 5000: (15000*5000*100 + 5e8)/1e9 = 8 each; 3*2 + 2*8
		{"overdue multiplier", 5, []tx{{15000, 2, 5}}, 5, nil, 22},
		// priority 9 (urgent, 1.001): ticks 0-1 m = trunc(1000*1001/1000) = 1001: 1e7*1001*100/1e9 = 1001 each;
		// tick 2 overdue (1.5): m = trunc(1500*1001/1000) = 1501 (not 1501.5): (1.501e12 + 5e8)/1e9 = 1501; 2*1001 + 1501
		{"priority multiplier truncated", 3, []tx{{10000000, 1, 9}}, 1.5, &PriorityDelayMultipliers{Urgent: 1.001, Normal: 1, Low: 1}, 3503},
		// priority 2 is the low band (0.5): m = 500: (100000*500*100 + 5e8)/1e9 = 5 per tick, 2 ticks
		{"low band", 2, []tx{{100000, 5, 2}}, 5, &PriorityDelayMultipliers{Urgent: 2, Normal: 1, Low: 0.5}, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var evs []Event
			for _, x := range tc.txs {
				e := txEvent(0, "A", "B", x.amount, x.deadline)
				e.Priority = x.priority
				evs = append(evs, e)
			}
			c := twoAgents(tc.tpd, 1, AgentConfig{OpeningBalance: 1 << 40, Policy: mustPolicy(t, holdJSON)}, AgentConfig{}, evs...)
			c.Costs.DelayCostPerTickPerCent = 0.0001
			c.Costs.OverdueDelayMultiplier = tc.ovd
			c.Costs.PriorityDelayMultipliers = tc.prio
			r := run(t, c)
			if want := (Costs{Delay: tc.delay}); r.Agent("A").Costs != want {
				t.Errorf("costs %+v, want %+v", r.Agent("A").Costs, want)
			}
		})
	}
}

// Delay is charged on the agent's payments in Q1 (held by its policy) and in
// Q2 (released but unpaid) together.
func TestDelayCostCoversQ1AndQ2(t *testing.T) {
	c := twoAgents(2, 1, AgentConfig{Policy: mustPolicy(t, holdBigJSON)}, AgentConfig{},
		txEvent(0, "A", "B", 100000, 5), // > 50000: held in Q1
		txEvent(0, "A", "B", 20000, 5))  // released, no liquidity: Q2
	c.Costs.DelayCostPerTickPerCent = 0.0001
	s := newSim(t, c, WithEventLog())
	r := s.Run()
	// ((100000 + 20000) * 1000 * 100 + 5e8)/1e9 = 12 per tick (Q1 alone would be 10), 2 ticks
	if want := (Costs{Delay: 24}); r.Agent("A").Costs != want {
		t.Errorf("costs %+v, want %+v", r.Agent("A").Costs, want)
	}
	queued := 0
	for _, e := range s.Events() {
		if e.Kind == EvQueued && e.Tx == 1 {
			queued++
		}
	}
	if queued != 1 || s.Transactions()[1].Status != TxPending {
		t.Errorf("the 20000 payment should sit in Q2 (queued %d times)", queued)
	}
}

// The deadline penalty is charged once, in the tick the payment becomes
// overdue (tick > deadline), whether it waits in Q1 or in Q2.
func TestDeadlinePenaltyOnce(t *testing.T) {
	c := twoAgents(4, 1,
		AgentConfig{Policy: mustPolicy(t, holdJSON)}, // Q1
		AgentConfig{}, // Fifo, no liquidity: Q2
		txEvent(0, "A", "B", 1000, 1), txEvent(0, "B", "A", 2000, 1))
	c.Costs.DeadlinePenalty = Penalty{Amount: 50000}
	s := newSim(t, c, WithEventLog())
	// deadline = 0+1 = 1; overdue from tick 2
	want := []int64{0, 0, 50000, 50000}
	for tick := 0; tick < 4; tick++ {
		s.Step()
		r := s.Result()
		for _, id := range []string{"A", "B"} {
			if got := r.Agent(id).Costs; got != (Costs{DeadlinePenalty: want[tick]}) {
				t.Errorf("after tick %d: %s costs %+v, want deadline penalty %d", tick, id, got, want[tick])
			}
		}
	}
	for _, e := range s.Events() {
		if e.Kind == EvOverdue && (e.Tick != 2 || e.Amount != 50000) {
			t.Errorf("overdue event at tick %d amount %d, want tick 2 amount 50000", e.Tick, e.Amount)
		}
	}
	if n := countKinds(s.Events())[EvOverdue]; n != 2 {
		t.Errorf("%d overdue events, want 2", n)
	}
}

func TestEODPenalty(t *testing.T) {
	// Held payments with deadlines 1, 2 and 3 over two days of 4 ticks.
	c := twoAgents(4, 2, AgentConfig{Policy: mustPolicy(t, holdJSON)}, AgentConfig{},
		txEvent(0, "A", "B", 1000, 1), txEvent(0, "A", "B", 1000, 2), txEvent(0, "A", "B", 1000, 3))
	c.Costs.EODPenaltyPerTransaction = Penalty{Amount: 10000}
	r := run(t, c)
	a := r.Agent("A")
	// day 0, last tick 3: deadlines 1 and 2 are < 3 (3 is not): 2*10000;
	// day 1, last tick 7: all three are < 7: 3*10000
	want := []Costs{{EODPenalty: 20000}, {EODPenalty: 30000}}
	if !slices.Equal(a.DailyCosts, want) {
		t.Errorf("daily costs %+v, want %+v", a.DailyCosts, want)
	}
	if a.Costs != (Costs{EODPenalty: 50000}) {
		t.Errorf("total costs %+v, want EOD 50000", a.Costs)
	}
}

func TestPenaltyOf(t *testing.T) {
	cases := []struct {
		name   string
		p      Penalty
		amount int64
		want   int64
	}{
		{"fixed ignores amount", Penalty{Amount: 50000}, 123456, 50000},
		// floor(123456 * trunc(12.5*1e6) / 1e10) = floor(1.5432e12/1e10) = 154
		{"rate", Penalty{Rate: true, BpsPerEvent: 12.5}, 123456, 154},
		// |amount| is used
		{"rate negative amount", Penalty{Rate: true, BpsPerEvent: 12.5}, -123456, 154},
		// trunc(2.9999999e6) = 2999999 (round would give 3000000): 1e10*2999999/1e10
		{"rate truncates bps", Penalty{Rate: true, BpsPerEvent: 2.9999999}, 1e10, 2999999},
		// floor(9999 * 1e6 / 1e10) = floor(0.9999) = 0: floor, not half up
		{"rate floors", Penalty{Rate: true, BpsPerEvent: 1}, 9999, 0},
	}
	for _, tc := range cases {
		if got := tc.p.Of(tc.amount); got != tc.want {
			t.Errorf("%s: Of(%d) = %d, want %d", tc.name, tc.amount, got, tc.want)
		}
	}
}

// Rate-mode penalties through the engine.
func TestRateModePenalties(t *testing.T) {
	c := twoAgents(4, 1, AgentConfig{Policy: mustPolicy(t, holdJSON)}, AgentConfig{}, txEvent(0, "A", "B", 123456, 1))
	c.Costs.DeadlinePenalty = Penalty{Rate: true, BpsPerEvent: 12.5}
	c.Costs.EODPenaltyPerTransaction = Penalty{Rate: true, BpsPerEvent: 100}
	r := run(t, c)
	// deadline: floor(123456*12.5e6/1e10) = 154 (at tick 2);
	// EOD (deadline 1 < 3): floor(123456*100e6/1e10) = floor(1234.56) = 1234
	if want := (Costs{DeadlinePenalty: 154, EODPenalty: 1234}); r.Agent("A").Costs != want {
		t.Errorf("costs %+v, want %+v", r.Agent("A").Costs, want)
	}
}

func TestSplitFriction(t *testing.T) {
	cases := []struct {
		name      string
		divisible bool
		friction  int64
		amounts   []int64
	}{
		// 10000/3 = 3333, remainder to the last: 3333, 3333, 3334; friction 1000*(3-1)
		{"divisible", true, 2000, []int64{10000, 3333, 3333, 3334}},
		// SimCash splits a payment whatever its divisible flag (its
		// transactions carry none): the same split and friction
		{"indivisible", false, 2000, []int64{10000, 3333, 3333, 3334}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := txEvent(0, "A", "B", 10000, 5)
			e.Divisible = tc.divisible
			c := twoAgents(2, 1, AgentConfig{OpeningBalance: 100000, Policy: mustPolicy(t, split3JSON)}, AgentConfig{}, e)
			c.Costs.SplitFrictionCost = 1000
			s := newSim(t, c)
			r := s.Run()
			if want := (Costs{SplitFriction: tc.friction}); r.Agent("A").Costs != want {
				t.Errorf("costs %+v, want %+v", r.Agent("A").Costs, want)
			}
			txs := s.Transactions()
			var amounts []int64
			for i, tx := range txs {
				amounts = append(amounts, tx.Amount)
				if tx.Status != TxSettled || tx.SettledTick != 0 {
					t.Errorf("tx %d: status %v settled at %d, want settled at tick 0", i, tx.Status, tx.SettledTick)
				}
				if i > 0 && tx.Parent != 0 {
					t.Errorf("child %d parent %d, want 0", i, tx.Parent)
				}
			}
			if !slices.Equal(amounts, tc.amounts) {
				t.Errorf("amounts %v, want %v", amounts, tc.amounts)
			}
			// the parent counts once as settled; B received everything
			if a := r.Agent("A"); a.Settled != 1 || a.FinalBalance != 90000 || r.Agent("B").FinalBalance != 10000 {
				t.Errorf("A settled %d balance %d, B balance %d; want 1, 90000, 10000", a.Settled, a.FinalBalance, r.Agent("B").FinalBalance)
			}
		})
	}
}
