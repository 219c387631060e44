package sim

import (
	"reflect"
	"slices"
	"testing"
)

func TestCustomTransactionArrivalDeadline(t *testing.T) {
	cases := []struct {
		name       string
		tpd, days  int
		capEOD     bool
		tick       int
		deadline   *int
		wantDl     int32
		wantPrio   int
		divisible  bool
		wantAmount int64
	}{
		// tick + deadline = 3 + 4
		{"relative deadline", 10, 2, false, 3, intp(4), 7, 5, false, 1000},
		// no deadline: 3 + max(100/10, 5) = 13
		{"default deadline long day", 100, 1, false, 3, nil, 13, 7, true, 2000},
		// no deadline: 3 + max(20/10, 5) = 8
		{"default deadline short day", 20, 1, false, 3, nil, 8, 0, false, 1},
		// min(8+5, run end 1*10) = 10
		{"capped at run end", 10, 1, false, 8, intp(5), 10, 10, false, 3000},
		// min(7+5, 20) = 12, EOD cap (0+1)*10-1 = 9
		{"capped at end of day", 10, 2, true, 7, intp(5), 9, 5, false, 4000},
		// day 1: min(12+20, 20) = 20, EOD cap (1+1)*10-1 = 19
		{"capped at end of later day", 10, 3, true, 12, intp(20), 19, 5, false, 5000},
		// min(9+5, 20) = 14, EOD cap 9, at least 9+1 = 10
		{"last tick raised to tick+1", 10, 2, true, 9, intp(5), 10, 5, false, 6000},
		// 3 + 0 = 3, at least 4
		{"zero deadline", 10, 1, false, 3, intp(0), 4, 5, false, 7000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := Event{Kind: CustomTransactionArrival, Tick: tc.tick, FromAgent: "A", ToAgent: "B", Amount: tc.wantAmount,
				Priority: tc.wantPrio, Deadline: tc.deadline, Divisible: tc.divisible}
			c := twoAgents(tc.tpd, tc.days, AgentConfig{Policy: mustPolicy(t, holdJSON)}, AgentConfig{}, e)
			c.DeadlineCapAtEOD = tc.capEOD
			s := newSim(t, c, WithTicks(tc.tick+1))
			r := s.Run()
			txs := s.Transactions()
			if len(txs) != 1 {
				t.Fatalf("%d transactions, want 1", len(txs))
			}
			tx := txs[0]
			want := Tx{ID: 0, Sender: 0, Receiver: 1, Amount: tc.wantAmount, Remaining: tc.wantAmount, Arrival: int32(tc.tick),
				Deadline: tc.wantDl, Priority: int32(tc.wantPrio), Divisible: tc.divisible, Status: TxPending}
			if tx.ID != want.ID || tx.Sender != want.Sender || tx.Receiver != want.Receiver || tx.Amount != want.Amount ||
				tx.Remaining != want.Remaining || tx.Arrival != want.Arrival || tx.Deadline != want.Deadline ||
				tx.Priority != want.Priority || tx.Divisible != want.Divisible || tx.Status != want.Status {
				t.Errorf("tx %+v\nwant %+v", tx, want)
			}
			if a := r.Agent("A"); a.Arrivals != 1 {
				t.Errorf("A arrivals %d, want 1", a.Arrivals)
			}
		})
	}
}

// Generated arrivals cap at (day+1)*ticks_per_day with deadline_cap_at_eod,
// one more than scenario transactions.
func TestArrivalDeadlineCaps(t *testing.T) {
	c := twoAgents(10, 2, AgentConfig{Policy: mustPolicy(t, holdJSON), Arrivals: &ArrivalConfig{
		RatePerTick: 3, Amount: Distribution{Kind: Uniform, Min: 1, Max: 9}, DeadlineMin: 4, DeadlineMax: 4, Priority: 5}}, AgentConfig{})
	for _, capEOD := range []bool{false, true} {
		c.DeadlineCapAtEOD = capEOD
		s := newSim(t, c)
		s.Run()
		if len(s.Transactions()) == 0 {
			t.Fatal("no arrivals")
		}
		for _, tx := range s.Transactions() {
			a := int(tx.Arrival)
			want := min(a+4, 20) // run end 2*10
			if capEOD {
				want = min(want, (a/10+1)*10) // e.g. arrival 7: min(11, 10) = 10
			}
			want = max(want, a+1)
			if int(tx.Deadline) != want {
				t.Errorf("cap %v: arrival %d deadline %d, want %d", capEOD, a, tx.Deadline, want)
			}
		}
	}
}

func TestDirectTransfer(t *testing.T) {
	// moves balance with no liquidity check and creates no transaction
	c := twoAgents(3, 1, AgentConfig{}, AgentConfig{},
		Event{Kind: DirectTransfer, Tick: 1, FromAgent: "A", ToAgent: "B", Amount: 5000})
	s := newSim(t, c)
	r := s.Run()
	if got, want := r.Agent("A").BalanceHistory, []int64{0, -5000, -5000}; !slices.Equal(got, want) {
		t.Errorf("A balances %v, want %v", got, want)
	}
	if got, want := r.Agent("B").BalanceHistory, []int64{0, 5000, 5000}; !slices.Equal(got, want) {
		t.Errorf("B balances %v, want %v", got, want)
	}
	if len(s.Transactions()) != 0 {
		t.Errorf("%d transactions, want 0", len(s.Transactions()))
	}
}

func TestScheduledSettlement(t *testing.T) {
	// Bypasses Q1 (A's policy holds everything) and creates no payment:
	// it settles now if A can pay, else nothing happens (SimCash).
	c := twoAgents(4, 1, AgentConfig{OpeningBalance: 3000, Policy: mustPolicy(t, holdJSON)}, AgentConfig{},
		Event{Kind: ScheduledSettlement, Tick: 0, FromAgent: "A", ToAgent: "B", Amount: 2000},
		Event{Kind: ScheduledSettlement, Tick: 1, FromAgent: "A", ToAgent: "B", Amount: 2000},
		Event{Kind: DirectTransfer, Tick: 2, FromAgent: "B", ToAgent: "A", Amount: 1000})
	s := newSim(t, c)
	r := s.Run()
	if n := len(s.Transactions()); n != 0 {
		t.Fatalf("%d transactions, want 0", n)
	}
	// tick 0: 3000 >= 2000 settles; tick 1: 1000 < 2000, dropped; tick 2: +1000
	if got, want := r.Agent("A").BalanceHistory, []int64{1000, 1000, 2000, 2000}; !slices.Equal(got, want) {
		t.Errorf("A balances %v, want %v", got, want)
	}
	if a := r.Agent("A"); a.Arrivals != 0 || a.Settled != 0 {
		t.Errorf("A arrivals %d settled %d, want 0 0", a.Arrivals, a.Settled)
	}
}

func TestCollateralAdjustment(t *testing.T) {
	// A's 5000 waits in Q2 until its unsecured cap reaches 5000 (0 + 4999 + 1).
	c := twoAgents(4, 1, AgentConfig{}, AgentConfig{},
		txEvent(0, "A", "B", 5000, 10),
		Event{Kind: CollateralAdjustment, Tick: 1, Agent: "A", Delta: 4999},
		Event{Kind: CollateralAdjustment, Tick: 2, Agent: "A", Delta: 1})
	s := newSim(t, c)
	r := s.Run()
	if tx := s.Transactions()[0]; tx.Status != TxSettled || tx.SettledTick != 2 {
		t.Errorf("status %v settled at %d, want settled at tick 2", tx.Status, tx.SettledTick)
	}
	if got, want := r.Agent("A").BalanceHistory, []int64{0, 0, -5000, -5000}; !slices.Equal(got, want) {
		t.Errorf("A balances %v, want %v", got, want)
	}
}

// arrivalConfig: A and B both generate payments; 20 ticks, one day.
func arrivalConfig(rateA, rateB float64, events ...Event) *Config {
	arr := func(rate float64) *ArrivalConfig {
		return &ArrivalConfig{RatePerTick: rate, Amount: Distribution{Kind: Uniform, Min: 100, Max: 200}, DeadlineMin: 3, DeadlineMax: 5, Priority: 5}
	}
	return &Config{TicksPerDay: 20, NumDays: 1, Seed: 7, Costs: zeroCosts(), Events: events, Agents: []AgentConfig{
		{ID: "A", OpeningBalance: 1 << 40, Arrivals: arr(rateA)},
		{ID: "B", OpeningBalance: 1 << 40, Arrivals: arr(rateB)},
	}}
}

func runTxs(t *testing.T, c *Config) []Tx {
	t.Helper()
	s := newSim(t, c)
	s.Run()
	if len(s.Transactions()) == 0 {
		t.Fatal("no arrivals")
	}
	return s.Transactions()
}

func arrivalsBy(txs []Tx, sender int32, from, to int) int {
	n := 0
	for _, tx := range txs {
		if tx.Sender == sender && int(tx.Arrival) >= from && int(tx.Arrival) < to {
			n++
		}
	}
	return n
}

func TestArrivalRateChanges(t *testing.T) {
	t.Run("global x2 equals doubled rates", func(t *testing.T) {
		got := runTxs(t, arrivalConfig(1.5, 1.5, Event{Kind: GlobalArrivalRateChange, Tick: 0, Multiplier: 2}))
		want := runTxs(t, arrivalConfig(3, 3))
		if !reflect.DeepEqual(got, want) {
			t.Error("GlobalArrivalRateChange x2 at tick 0 differs from rates 3.0")
		}
	})
	t.Run("agent x2 equals doubled rate", func(t *testing.T) {
		got := runTxs(t, arrivalConfig(1.5, 1.5, Event{Kind: AgentArrivalRateChange, Tick: 0, Agent: "A", Multiplier: 2}))
		want := runTxs(t, arrivalConfig(3, 1.5))
		if !reflect.DeepEqual(got, want) {
			t.Error("AgentArrivalRateChange A x2 at tick 0 differs from A rate 3.0")
		}
	})
	t.Run("global off then agent x1 stays off", func(t *testing.T) {
		// a global change multiplies the base rate, an agent change the
		// rate in force (SimCash): global x0 at 5, then A x1 at 10 is 0 x 1
		txs := runTxs(t, arrivalConfig(3, 3,
			Event{Kind: GlobalArrivalRateChange, Tick: 5, Multiplier: 0},
			Event{Kind: AgentArrivalRateChange, Tick: 10, Agent: "A", Multiplier: 1}))
		base := runTxs(t, arrivalConfig(3, 3))
		// the first five ticks are untouched
		if n := arrivalsBy(base, 0, 0, 5) + arrivalsBy(base, 1, 0, 5); n == 0 || !reflect.DeepEqual(txs[:n], base[:n]) {
			t.Errorf("ticks 0-4 differ from the base run (%d arrivals)", n)
		}
		for _, c := range []struct {
			sender   int32
			from, to int
			some     bool
		}{{0, 0, 5, true}, {1, 0, 5, true}, {0, 5, 10, false}, {1, 5, 10, false}, {0, 10, 20, false}, {1, 10, 20, false}} {
			if n := arrivalsBy(txs, c.sender, c.from, c.to); (n > 0) != c.some {
				t.Errorf("agent %d ticks [%d,%d): %d arrivals, want some=%v", c.sender, c.from, c.to, n, c.some)
			}
		}
	})
}

func TestCounterpartyWeightChange(t *testing.T) {
	c := &Config{TicksPerDay: 20, NumDays: 1, Seed: 3, Costs: zeroCosts(),
		Agents: []AgentConfig{
			{ID: "A", OpeningBalance: 1 << 40, Arrivals: &ArrivalConfig{RatePerTick: 2, Amount: Distribution{Kind: Uniform, Min: 1, Max: 10},
				CounterpartyWeights: map[string]float64{"B": 1, "C": 0}, DeadlineMin: 3, DeadlineMax: 3, Priority: 5}},
			{ID: "B"}, {ID: "C"},
		},
		Events: []Event{
			{Kind: CounterpartyWeightChange, Tick: 10, Agent: "A", Counterparty: "B", NewWeight: 0},
			{Kind: CounterpartyWeightChange, Tick: 10, Agent: "A", Counterparty: "C", NewWeight: 1},
		},
	}
	txs := runTxs(t, c)
	before, after := 0, 0
	for _, tx := range txs {
		// before tick 10 weight B=1, C=0: always B (index 1); after, B=0, C=1: always C (index 2)
		want := int32(1)
		if tx.Arrival >= 10 {
			want = 2
			after++
		} else {
			before++
		}
		if tx.Receiver != want {
			t.Errorf("arrival at %d went to %d, want %d", tx.Arrival, tx.Receiver, want)
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("arrivals before/after the change: %d/%d, want both > 0", before, after)
	}
}

func TestDeadlineWindowChange(t *testing.T) {
	mk := func(events ...Event) *Config {
		c := arrivalConfig(2, 0, events...)
		c.TicksPerDay = 100 // no run-end cap within 20 ticks
		c.Agents[0].Arrivals.DeadlineMin, c.Agents[0].Arrivals.DeadlineMax = 3, 3
		return c
	}
	run20 := func(c *Config) []Tx {
		s := newSim(t, c, WithTicks(20))
		s.Run()
		return s.Transactions()
	}
	// round(3*1.5) = round(4.5) = 5 (half away from zero) for both bounds
	txs := run20(mk(Event{Kind: DeadlineWindowChange, Tick: 10, MinTicksMultiplier: ptrF(1.5), MaxTicksMultiplier: ptrF(1.5)}))
	base := run20(mk())
	if len(txs) != len(base) || len(txs) == 0 {
		t.Fatalf("%d arrivals vs %d in the base run", len(txs), len(base))
	}
	late := 0
	for i, tx := range txs {
		want := tx.Arrival + 3
		if tx.Arrival >= 10 {
			want = tx.Arrival + 5
			late++
		}
		if tx.Deadline != want {
			t.Errorf("arrival at %d: deadline %d, want %d", tx.Arrival, tx.Deadline, want)
		}
		// a one-value window still draws once: amounts match the base run
		if tx.Amount != base[i].Amount {
			t.Errorf("tx %d amount %d, base run %d", i, tx.Amount, base[i].Amount)
		}
	}
	if late == 0 {
		t.Error("no arrivals after the change")
	}
}

func ptrF(v float64) *float64 { return &v }

func TestRepeatingEvents(t *testing.T) {
	c := twoAgents(10, 1, AgentConfig{Policy: mustPolicy(t, holdJSON)}, AgentConfig{},
		Event{Kind: DirectTransfer, Tick: 1, Interval: 3, FromAgent: "A", ToAgent: "B", Amount: 100},
		Event{Kind: CustomTransactionArrival, Tick: 0, Interval: 5, FromAgent: "A", ToAgent: "B", Amount: 1, Priority: 5},
		Event{Kind: CustomTransactionArrival, Tick: 5, FromAgent: "A", ToAgent: "B", Amount: 2, Priority: 5},
		Event{Kind: CustomTransactionArrival, Tick: 5, Interval: 5, FromAgent: "A", ToAgent: "B", Amount: 3, Priority: 5},
	)
	s := newSim(t, c)
	r := s.Run()
	// transfers at ticks 1, 4, 7
	want := []int64{0, 100, 100, 100, 200, 200, 200, 300, 300, 300}
	if got := r.Agent("B").BalanceHistory; !slices.Equal(got, want) {
		t.Errorf("B balances %v, want %v", got, want)
	}
	// tick 0: 1; tick 5: 1, 2, 3 in config order
	var amounts, ticks []int64
	for _, tx := range s.Transactions() {
		amounts = append(amounts, tx.Amount)
		ticks = append(ticks, int64(tx.Arrival))
	}
	if !slices.Equal(amounts, []int64{1, 1, 2, 3}) || !slices.Equal(ticks, []int64{0, 5, 5, 5}) {
		t.Errorf("arrivals amounts %v at %v, want [1 1 2 3] at [0 5 5 5]", amounts, ticks)
	}
}

func TestOneTimeEventsConfigOrder(t *testing.T) {
	c := twoAgents(4, 1, AgentConfig{Policy: mustPolicy(t, holdJSON)}, AgentConfig{},
		txEvent(2, "A", "B", 1, 5), txEvent(0, "A", "B", 2, 5), txEvent(2, "A", "B", 3, 5))
	s := newSim(t, c)
	s.Run()
	var amounts []int64
	for _, tx := range s.Transactions() {
		amounts = append(amounts, tx.Amount)
	}
	// tick 0: 2; tick 2: 1 then 3 (config order)
	if !slices.Equal(amounts, []int64{2, 1, 3}) {
		t.Errorf("amounts %v, want [2 1 3]", amounts)
	}
}

// Agents draw in id order, but counterparty candidates are the other agents
// in config order: swapping B and C in the config swaps A's receivers and
// changes nothing else.
func TestArrivalOrderAndCandidates(t *testing.T) {
	mk := func(order ...string) *Config {
		c := &Config{TicksPerDay: 20, NumDays: 1, Seed: 9, Costs: zeroCosts()}
		for _, id := range order {
			c.Agents = append(c.Agents, AgentConfig{ID: id, OpeningBalance: 1 << 40, Arrivals: &ArrivalConfig{
				RatePerTick: 1, Amount: Distribution{Kind: Uniform, Min: 1, Max: 1000}, DeadlineMin: 2, DeadlineMax: 4, Priority: 5}})
		}
		return c
	}
	abc, acb := runTxs(t, mk("A", "B", "C")), runTxs(t, mk("A", "C", "B"))
	if len(abc) != len(acb) {
		t.Fatalf("%d vs %d arrivals", len(abc), len(acb))
	}
	swapped := 0
	for i := range abc {
		x, y := abc[i], acb[i]
		if x.Sender == 0 && x.Receiver != 0 {
			y.Receiver = 3 - y.Receiver // B (1) <-> C (2)
			swapped++
		}
		if x != y {
			t.Fatalf("tx %d: %+v vs %+v", i, x, acb[i])
		}
	}
	if swapped == 0 {
		t.Error("A made no payments")
	}
}
