package sim

import (
	"slices"
	"testing"

	"simcash/policy"
)

// releaseAll is the Castro starting policy with a given pool fraction; as
// SimCash's experiment runner does, callers also set the agent's
// liquidity_allocation_fraction, which is what day 0 allocates.
func releaseAll(t testing.TB, fraction float64) *policy.Policy {
	t.Helper()
	p, err := policy.Builtin("Fifo")
	if err != nil {
		t.Fatal(err)
	}
	p, err = p.AsJSON().WithParams(map[string]float64{"initial_liquidity_fraction": fraction})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func castroCosts() CostRates {
	c := DefaultCostRates()
	c.DelayCostPerTickPerCent = 0.2
	c.OverdraftBpsPerTick = 0
	c.CollateralCostPerTickBps = 0
	c.EODPenaltyPerTransaction = Penalty{Amount: 100000}
	c.DeadlinePenalty = Penalty{Amount: 50000}
	c.SplitFrictionCost = 0
	return c
}

func intp(v int) *int { return &v }

// exp1Config is Castro et al.'s two-period game, as in the reference
// exp1_2period.yaml.
func exp1Config(t testing.TB, fa, fb float64) *Config {
	c := &Config{
		TicksPerDay: 2, NumDays: 1, Seed: 42, DeferredCrediting: true, DeadlineCapAtEOD: true,
		Costs: castroCosts(),
		Agents: []AgentConfig{
			{ID: "BANK_A", LiquidityPool: 100000, Policy: releaseAll(t, fa), LiquidityAllocationFraction: ptrF(fa)},
			{ID: "BANK_B", LiquidityPool: 100000, Policy: releaseAll(t, fb), LiquidityAllocationFraction: ptrF(fb)},
		},
		Events: []Event{
			{Kind: CustomTransactionArrival, Tick: 1, FromAgent: "BANK_A", ToAgent: "BANK_B", Amount: 15000, Priority: 5, Deadline: intp(2)},
			{Kind: CustomTransactionArrival, Tick: 0, FromAgent: "BANK_B", ToAgent: "BANK_A", Amount: 15000, Priority: 5, Deadline: intp(2)},
			{Kind: CustomTransactionArrival, Tick: 1, FromAgent: "BANK_B", ToAgent: "BANK_A", Amount: 5000, Priority: 5, Deadline: intp(2)},
		},
	}
	c.Costs.LiquidityCostPerTickBps = 500
	return c
}

func exp2Config(t testing.TB, fa, fb float64) *Config {
	arr := func(cp string) *ArrivalConfig {
		return &ArrivalConfig{
			RatePerTick: 2.0, Amount: Distribution{Kind: LogNormal, Mean: 10000, StdDev: 5000},
			CounterpartyWeights: map[string]float64{cp: 1.0}, DeadlineMin: 3, DeadlineMax: 8, Priority: 5,
		}
	}
	c := &Config{
		TicksPerDay: 12, NumDays: 1, Seed: 42, DeferredCrediting: true, DeadlineCapAtEOD: true,
		Costs: castroCosts(),
		Agents: []AgentConfig{
			{ID: "BANK_A", LiquidityPool: 1000000, Policy: releaseAll(t, fa), LiquidityAllocationFraction: ptrF(fa), Arrivals: arr("BANK_B")},
			{ID: "BANK_B", LiquidityPool: 1000000, Policy: releaseAll(t, fb), LiquidityAllocationFraction: ptrF(fb), Arrivals: arr("BANK_A")},
		},
	}
	c.Costs.LiquidityCostPerTickBps = 83
	return c
}

func run(t testing.TB, c *Config, opts ...Option) *Result {
	t.Helper()
	s, err := New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run()
}

func TestCastroExp1Costs(t *testing.T) {
	cases := []struct {
		fa, fb       float64
		costA, costB int64
	}{
		{0.5, 0.5, 5000, 5000},
		{0.0, 0.2, 0, 2000},
		{0.1, 0.2, 1000, 2000},
		{0.0178, 0.0, 3178, 7000},
	}
	for _, tc := range cases {
		r := run(t, exp1Config(t, tc.fa, tc.fb))
		a, b := r.Agent("BANK_A").Costs.Total(), r.Agent("BANK_B").Costs.Total()
		if a != tc.costA || b != tc.costB {
			t.Errorf("fractions (%v, %v): costs A=%d B=%d, want %d %d", tc.fa, tc.fb, a, b, tc.costA, tc.costB)
		}
	}
}

func TestCastroExp2Baseline(t *testing.T) {
	r := run(t, exp2Config(t, 0.5, 0.5))
	a, b := r.Agent("BANK_A"), r.Agent("BANK_B")
	if a.Arrivals != 25 || b.Arrivals != 28 {
		t.Errorf("arrivals A=%d B=%d, want 25 28", a.Arrivals, b.Arrivals)
	}
	if a.Settled != 25 || b.Settled != 28 {
		t.Errorf("settled A=%d B=%d, want all", a.Settled, b.Settled)
	}
	if a.Costs.Total() != 49800 || b.Costs.Total() != 49800 {
		t.Errorf("costs A=%d B=%d, want 49800 each", a.Costs.Total(), b.Costs.Total())
	}
	want := []int64{502341, 545641, 527778, 523601, 510106, 493321, 475421, 464464, 478108, 504592, 511323, 56274}
	if !slices.Equal(a.BalanceHistory, want) {
		t.Errorf("A balance history\n got %v\nwant %v", a.BalanceHistory, want)
	}
	if got := b.BalanceHistory[len(b.BalanceHistory)-1]; got != -56274 {
		t.Errorf("B final balance %d, want -56274", got)
	}
	for i := range want {
		// B mirrors A around the two pools (1,000,000 allocated in total).
		if i < len(want)-1 && a.BalanceHistory[i]+b.BalanceHistory[i] != 1000000 {
			t.Errorf("tick %d: A+B = %d, want 1000000", i, a.BalanceHistory[i]+b.BalanceHistory[i])
		}
	}
}
