package sim

import (
	"reflect"
	"slices"
	"testing"
)

// Three days of four ticks: a pool of 30000 allocated at the scenario's
// fraction 0.5 on day 0 and in full on later days (SimCash's
// allocate_daily_liquidity: the hold policy has no
// initial_liquidity_fraction), and two held payments that keep costing
// delay.
func multiDayConfig(t testing.TB) *Config {
	c := twoAgents(4, 3,
		AgentConfig{LiquidityPool: 30000, LiquidityAllocationFraction: ptrF(0.5), Policy: mustPolicy(t, holdJSON)},
		AgentConfig{},
		txEvent(0, "A", "B", 100000, 100), // deadline capped at run end 12: never overdue
		txEvent(5, "A", "B", 20000, 100))
	c.Costs.LiquidityCostPerTickBps = 7
	c.Costs.DelayCostPerTickPerCent = 0.0001
	return c
}

func TestMultiDayCostsAndPool(t *testing.T) {
	s := newSim(t, multiDayConfig(t))
	// liquidity: (15000*7e6 + 5e9)/1e10 = 11 per tick, 44 on day 0;
	// (30000*7e6 + 5e9)/1e10 = 21 per tick, 84 a day later.
	// delay: 100000*1000*100/1e9 = 10 per tick; with the 20000 from tick 5, 120000 -> 12.
	// day 0: 4*10 = 40; day 1: 10 + 3*12 = 46; day 2: 4*12 = 48.
	want := []Costs{{Liquidity: 44, Delay: 40}, {Liquidity: 84, Delay: 46}, {Liquidity: 84, Delay: 48}}
	for s.Tick() < 5 {
		s.Step()
	}
	// after tick 4 (first tick of day 1) the accumulators restarted: day 1 holds one tick
	if got, w := s.Result().Agent("A").DailyCosts, []Costs{want[0], {Liquidity: 21, Delay: 10}}; !slices.Equal(got, w) {
		t.Errorf("after tick 4: daily costs %+v, want %+v", got, w)
	}
	r := s.Run()
	a := r.Agent("A")
	if !slices.Equal(a.DailyCosts, want) {
		t.Errorf("daily costs %+v, want %+v", a.DailyCosts, want)
	}
	var sum Costs
	for _, d := range a.DailyCosts {
		sum.add(d)
	}
	// 44+84+84 = 212, 40+46+48 = 134
	if total := (Costs{Liquidity: 212, Delay: 134}); a.Costs != total || sum != total {
		t.Errorf("total %+v, sum of days %+v, want %+v", a.Costs, sum, total)
	}
	if r.TotalCost != 346 {
		t.Errorf("TotalCost %d, want 212+134 = 346", r.TotalCost)
	}
	// floor(30000*0.5) = 15000 allocated on day 0, 30000 on later days,
	// returned at each day's last tick
	wantBal := []int64{15000, 15000, 15000, 0, 30000, 30000, 30000, 0, 30000, 30000, 30000, 0}
	if !slices.Equal(a.BalanceHistory, wantBal) {
		t.Errorf("balances %v, want %v", a.BalanceHistory, wantBal)
	}
	b := r.Agent("B")
	if len(b.DailyCosts) != 3 || b.Costs.Total() != 0 {
		t.Errorf("B daily costs %+v, want three empty days", b.DailyCosts)
	}
}

func TestDeterminism(t *testing.T) {
	configs := map[string]func() *Config{
		"exp2": func() *Config { return exp2Config(t, 0.5, 0.5) },
		"network": func() *Config {
			c := networkConfig(t, 12, 20, 3)
			return c
		},
	}
	for name, mk := range configs {
		t.Run(name, func(t *testing.T) {
			s1, s2 := newSim(t, mk(), WithEventLog()), newSim(t, mk(), WithEventLog())
			r1, r2 := s1.Run(), s2.Run()
			if !reflect.DeepEqual(r1, r2) {
				t.Error("same config and seed gave different results")
			}
			if len(s1.Events()) == 0 || !reflect.DeepEqual(s1.Events(), s2.Events()) {
				t.Errorf("event logs differ (%d vs %d entries)", len(s1.Events()), len(s2.Events()))
			}
			if !reflect.DeepEqual(s1.Transactions(), s2.Transactions()) {
				t.Error("transactions differ")
			}
			s3 := newSim(t, mk(), WithSeed(43))
			r3 := s3.Run()
			if r3.Seed != 43 {
				t.Errorf("Result.Seed %d, want 43", r3.Seed)
			}
			if reflect.DeepEqual(arrivalsOf(s1), arrivalsOf(s3)) {
				t.Error("seed 43 gave the same arrivals as the config's seed")
			}
		})
	}
}

type arrival struct {
	tick             int32
	sender, receiver int32
	amount           int64
}

func arrivalsOf(s *Sim) []arrival {
	var out []arrival
	for _, tx := range s.Transactions() {
		out = append(out, arrival{tx.Arrival, tx.Sender, tx.Receiver, tx.Amount})
	}
	return out
}

// eventLogConfig produces every common kind of log entry in one day of
// four ticks: direct settlement, queueing and a bilateral offset (A, B), a
// held payment that becomes overdue and is left at the end of day (C).
func eventLogConfig(t testing.TB) *Config {
	c := lsmConfig(4, 1, LSMConfig{EnableBilateral: true}, []int64{10000, 0, 0},
		txEvent(0, "A", "B", 50000, 5), // A has 10000: queued
		txEvent(0, "A", "C", 100, 5),   // settles at once
		txEvent(0, "B", "A", 45000, 5), // queued, then offset against A->B
		txEvent(0, "C", "A", 1000, 1))  // held: overdue at tick 2, EOD penalty at tick 3
	c.Agents[2].Policy = mustPolicy(t, holdJSON)
	c.Costs = DefaultCostRates()
	return c
}

func TestEventLog(t *testing.T) {
	s := newSim(t, eventLogConfig(t), WithEventLog())
	s.Run()
	evs := s.Events()
	k := countKinds(evs)
	want := map[LogKind]int{
		EvArrival: 4, EvSettle: 1, EvQueued: 2, EvLSMBilateral: 1, EvLSMSettle: 2, EvOverdue: 1, EvEODPenalty: 1,
		// tick 0: A 2, B 1, C 1; ticks 1-3: C 1 each
		EvDecision: 7,
	}
	for kind, n := range want {
		if k[kind] != n {
			t.Errorf("%v: %d entries, want %d", kind, k[kind], n)
		}
	}
	// C's held 1000 at the default 0.0001: (1000*1000*100 + 5e8)/1e9 = 0 on ticks 0-1;
	// overdue (x5) on ticks 2-3: (1000*5000*100 + 5e8)/1e9 = 1, plus the deadline
	// penalty of 50000 with tick 2's costs. Nobody else has costs.
	costs := 0
	for i, e := range evs {
		if i > 0 && e.Tick < evs[i-1].Tick {
			t.Fatalf("entry %d at tick %d after tick %d", i, e.Tick, evs[i-1].Tick)
		}
		switch e.Kind {
		case EvCost:
			want := Costs{Delay: 1}
			if e.Tick == 2 {
				want.DeadlinePenalty = 50000
			}
			if s.AgentID(e.Agent) != "C" || e.Tick < 2 || e.Costs == nil || *e.Costs != want || e.Amount != want.Total() {
				t.Errorf("cost entry %+v (costs %+v), want C's delay of 1 at ticks 2 and 3", e, e.Costs)
			}
			costs++
		case EvOverdue:
			// C's payment (tx 3), deadline 1, overdue at tick 2, default penalty 50000
			if e.Tick != 2 || e.Tx != 3 || e.Amount != 50000 {
				t.Errorf("overdue entry %+v", e)
			}
		case EvEODPenalty:
			if e.Tick != 3 || e.Tx != 3 || e.Amount != 10000 {
				t.Errorf("EOD entry %+v", e)
			}
		case EvSettle:
			if e.Tx != 1 || e.Amount != 100 || e.Tick != 0 {
				t.Errorf("settlement entry %+v", e)
			}
		}
	}
	if costs != 2 {
		t.Errorf("%d cost entries, want 2", costs)
	}
	// C: deadline penalty 50000 + EOD 10000 + delay 2
	if got := s.Result().Agent("C").Costs.Total(); got != 60002 {
		t.Errorf("C total cost %d, want 60002", got)
	}
	if s.AgentID(evs[0].Agent) != "A" || evs[0].Kind != EvArrival {
		t.Errorf("first entry %+v, want A's arrival", evs[0])
	}
}

func TestEventFuncStreamsSameEntries(t *testing.T) {
	var streamed []LogEntry
	s1 := newSim(t, eventLogConfig(t), WithEventFunc(func(e LogEntry) { streamed = append(streamed, e) }))
	s1.Run()
	s2 := newSim(t, eventLogConfig(t), WithEventLog())
	s2.Run()
	if len(streamed) == 0 || !reflect.DeepEqual(streamed, s2.Events()) {
		t.Errorf("streamed %d entries, logged %d; want the same", len(streamed), len(s2.Events()))
	}
	if s1.Events() != nil {
		t.Error("WithEventFunc also kept a log")
	}
}

func TestEventLogOffKeepsNoLog(t *testing.T) {
	s := newSim(t, eventLogConfig(t))
	s.Run()
	if s.Events() != nil {
		t.Fatalf("without WithEventLog the Sim kept %d entries", len(s.Events()))
	}
	cfg := exp2Config(t, 0.5, 0.5)
	allocs := func(opts ...Option) float64 {
		return testing.AllocsPerRun(20, func() {
			s, err := New(cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			s.Run()
		})
	}
	without, with := allocs(), allocs(WithEventLog())
	if without >= with {
		t.Errorf("allocations per run: %v without the log, %v with it; want fewer without", without, with)
	}
	t.Logf("allocs per exp2 day: %v without log, %v with log", without, with)
}
