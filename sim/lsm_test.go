package sim

import (
	"slices"
	"testing"
)

func i64p(v int64) *int64 { return &v }

// lsmConfig builds agents A, B, C... (Fifo, no costs) with the given opening
// balances and payments all arriving at tick 0.
func lsmConfig(tpd, days int, lsm LSMConfig, balances []int64, events ...Event) *Config {
	c := &Config{TicksPerDay: tpd, NumDays: days, Seed: 1, Costs: zeroCosts(), LSM: lsm, Events: events}
	for i, b := range balances {
		c.Agents = append(c.Agents, AgentConfig{ID: string(rune('A' + i)), OpeningBalance: b})
	}
	return c
}

func settledTicks(s *Sim) []int32 {
	var out []int32
	for _, tx := range s.Transactions() {
		out = append(out, tx.SettledTick)
	}
	return out
}

// A owes B 50000 and B owes A 45000. Neither can pay gross (A has 10000,
// B nothing); the net 5000 from A fits, so only bilateral offsetting settles.
func TestLSMBilateralOffset(t *testing.T) {
	bil := LSMConfig{EnableBilateral: true}
	cases := []struct {
		name     string
		lsm      LSMConfig
		balA     int64
		capA     int64
		limitA   map[string]int64
		settled  bool
		balances []int64 // A, B after settlement
	}{
		{"LSM off", LSMConfig{}, 10000, 0, nil, false, []int64{10000, 0}},
		// A: 10000 - 50000 + 45000 = 5000; B: 0 + 50000 - 45000 = 5000
		{"bilateral", bil, 10000, 0, nil, true, []int64{5000, 5000}},
		// the net 5000 may come from credit: A 0 - 5000
		{"net on credit", bil, 0, 5000, nil, true, []int64{-5000, 5000}},
		// 4999 < net 5000
		{"net too large", bil, 4999, 0, nil, false, []int64{4999, 0}},
		// cycles alone need three banks
		{"cycles only", LSMConfig{EnableCycles: true}, 10000, 0, nil, false, []int64{10000, 0}},
		// A's daily limit towards B (4000) is below both its gross (50000) and net (5000) outflow
		{"bilateral limit blocks", bil, 10000, 0, map[string]int64{"B": 4000}, false, []int64{10000, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := lsmConfig(2, 1, tc.lsm, []int64{tc.balA, 0}, txEvent(0, "A", "B", 50000, 5), txEvent(0, "B", "A", 45000, 5))
			c.Agents[0].UnsecuredCap = tc.capA
			c.Agents[0].BilateralLimits = tc.limitA
			s := newSim(t, c, WithEventLog())
			r := s.Run()
			want := []int32{-1, -1}
			if tc.settled {
				want = []int32{0, 0}
			}
			if got := settledTicks(s); !slices.Equal(got, want) {
				t.Errorf("settled ticks %v, want %v", got, want)
			}
			if got := []int64{r.Agent("A").FinalBalance, r.Agent("B").FinalBalance}; !slices.Equal(got, tc.balances) {
				t.Errorf("balances %v, want %v", got, tc.balances)
			}
			k := countKinds(s.Events())
			if tc.settled {
				// one offset of min(50000, 45000) with net flow A->B 5000, two LSM settlements
				if k[EvLSMBilateral] != 1 || k[EvLSMSettle] != 2 || k[EvSettle] != 0 {
					t.Errorf("event counts %v", k)
				}
				for _, e := range s.Events() {
					if e.Kind == EvLSMBilateral && (e.Amount != 45000 || e.Value != 5000) {
						t.Errorf("offset event amount %d value %d, want 45000 5000", e.Amount, e.Value)
					}
				}
			} else if k[EvLSMBilateral]+k[EvLSMSettle]+k[EvSettle] != 0 {
				t.Errorf("unexpected settlement events %v", k)
			}
		})
	}
}

// A->B 50000, B->C 40000, C->A 45000 with balances 5000, 0, 5000: nobody can
// pay gross, there is no two-way pair, and the net positions are A -5000,
// B +10000, C -5000.
func TestLSMCycle(t *testing.T) {
	both := LSMConfig{EnableBilateral: true, EnableCycles: true}
	cases := []struct {
		name     string
		lsm      LSMConfig
		balA     int64
		multiC   *int64
		settled  bool
		balances []int64
	}{
		{"LSM off", LSMConfig{}, 5000, nil, false, []int64{5000, 0, 5000}},
		{"bilateral only", LSMConfig{EnableBilateral: true}, 5000, nil, false, []int64{5000, 0, 5000}},
		// A: 5000 - 50000 + 45000 = 0; B: 0 - 40000 + 50000 = 10000; C: 5000 - 45000 + 40000 = 0
		{"cycles", both, 5000, nil, true, []int64{0, 10000, 0}},
		{"cycles only", LSMConfig{EnableCycles: true}, 5000, nil, true, []int64{0, 10000, 0}},
		// A cannot cover its net 5000
		{"net payer short", both, 4999, nil, false, []int64{4999, 0, 5000}},
		// C's daily multilateral limit 4000 is below its net (5000) and gross (45000) outflow
		{"multilateral limit blocks", both, 5000, i64p(4000), false, []int64{5000, 0, 5000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := lsmConfig(2, 1, tc.lsm, []int64{tc.balA, 0, 5000},
				txEvent(0, "A", "B", 50000, 5), txEvent(0, "B", "C", 40000, 5), txEvent(0, "C", "A", 45000, 5))
			c.Agents[2].MultilateralLimit = tc.multiC
			s := newSim(t, c, WithEventLog())
			r := s.Run()
			want := []int32{-1, -1, -1}
			if tc.settled {
				want = []int32{0, 0, 0}
			}
			if got := settledTicks(s); !slices.Equal(got, want) {
				t.Errorf("settled ticks %v, want %v", got, want)
			}
			var got []int64
			for _, id := range []string{"A", "B", "C"} {
				got = append(got, r.Agent(id).FinalBalance)
			}
			if !slices.Equal(got, tc.balances) {
				t.Errorf("balances %v, want %v", got, tc.balances)
			}
			k := countKinds(s.Events())
			if tc.settled {
				if k[EvLSMCycle] != 1 || k[EvLSMSettle] != 3 {
					t.Errorf("event counts %v", k)
				}
				for _, e := range s.Events() {
					// total value 50000+40000+45000 = 135000 over 3 banks
					if e.Kind == EvLSMCycle && (e.Amount != 135000 || e.Value != 3) {
						t.Errorf("cycle event amount %d value %d, want 135000 3", e.Amount, e.Value)
					}
				}
			} else if k[EvLSMCycle]+k[EvLSMSettle]+k[EvSettle] != 0 {
				t.Errorf("unexpected settlement events %v", k)
			}
		})
	}
}

// Daily outflow limits block settlement until they reset at the end of day.
func TestOutflowLimits(t *testing.T) {
	cases := []struct {
		name   string
		bil    map[string]int64
		multi  *int64
		events []Event
		want   []int32 // settled tick per transaction
	}{
		{
			// to B: 20000 at tick 0; another 20000 would make 40000 > 30000 and waits for
			// day 2 (tick 3); C is not limited
			name: "bilateral", bil: map[string]int64{"B": 30000},
			events: []Event{txEvent(0, "A", "B", 20000, 10), txEvent(1, "A", "B", 20000, 10), txEvent(1, "A", "C", 20000, 10)},
			want:   []int32{0, 3, 1},
		},
		{
			// 20000 at tick 0; to C 20000 would make 40000 > 30000 and waits for day 2;
			// to B 10000 makes exactly 30000 and settles at tick 1
			name: "multilateral", multi: i64p(30000),
			events: []Event{txEvent(0, "A", "B", 20000, 10), txEvent(1, "A", "C", 20000, 10), txEvent(1, "A", "B", 10000, 10)},
			want:   []int32{0, 3, 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := lsmConfig(3, 2, LSMConfig{}, []int64{1000000, 0, 0}, tc.events...)
			c.Agents[0].BilateralLimits = tc.bil
			c.Agents[0].MultilateralLimit = tc.multi
			s := newSim(t, c)
			s.Run()
			if got := settledTicks(s); !slices.Equal(got, tc.want) {
				t.Errorf("settled ticks %v, want %v", got, tc.want)
			}
		})
	}
}

// A->B 50000, B->C 40000, C->D 45000, D->A 42000 with balances 8000, 0,
// 5000, 0: net positions A -8000, B +10000, C -5000, D +3000. Only a cycle
// of length 4 settles it.
func TestLSMFourCycle(t *testing.T) {
	cases := []struct {
		maxLen   int
		settled  bool
		balances []int64
	}{
		{3, false, []int64{8000, 0, 5000, 0}},
		// A: 8000-50000+42000 = 0; B: 50000-40000 = 10000; C: 5000-45000+40000 = 0; D: 45000-42000 = 3000
		{4, true, []int64{0, 10000, 0, 3000}},
	}
	for _, tc := range cases {
		c := lsmConfig(2, 1, LSMConfig{EnableBilateral: true, EnableCycles: true, MaxCycleLength: tc.maxLen}, []int64{8000, 0, 5000, 0},
			txEvent(0, "A", "B", 50000, 5), txEvent(0, "B", "C", 40000, 5), txEvent(0, "C", "D", 45000, 5), txEvent(0, "D", "A", 42000, 5))
		s := newSim(t, c)
		r := s.Run()
		var got []int64
		for _, id := range []string{"A", "B", "C", "D"} {
			got = append(got, r.Agent(id).FinalBalance)
		}
		if !slices.Equal(got, tc.balances) {
			t.Errorf("max cycle length %d: balances %v, want %v", tc.maxLen, got, tc.balances)
		}
		for _, tx := range s.Transactions() {
			if (tx.Status == TxSettled) != tc.settled {
				t.Errorf("max cycle length %d: tx %d status %v, want settled=%v", tc.maxLen, tx.ID, tx.Status, tc.settled)
			}
		}
	}
}

// An offset blocked by today's outflow settles once the limit resets at the
// end of the day. Limits count gross outflows (the package's documented
// decision): 20000 already paid + 50000 > 60000 on day 0.
func TestLSMLimitResetsAtEndOfDay(t *testing.T) {
	c := lsmConfig(3, 2, LSMConfig{EnableBilateral: true}, []int64{30000, 0},
		txEvent(0, "A", "B", 20000, 10), // settles directly: A 10000 left
		txEvent(1, "A", "B", 50000, 10), txEvent(1, "B", "A", 45000, 10))
	c.Agents[0].BilateralLimits = map[string]int64{"B": 60000}
	s := newSim(t, c)
	r := s.Run()
	// day 1 starts at tick 3: outflow 0 + 50000 <= 60000, net 5000 <= 10000
	if got := settledTicks(s); !slices.Equal(got, []int32{0, 3, 3}) {
		t.Errorf("settled ticks %v, want [0 3 3]", got)
	}
	// A: 30000 - 20000 - 5000 = 5000; B: 20000 + 5000 = 25000
	if a, b := r.Agent("A").FinalBalance, r.Agent("B").FinalBalance; a != 5000 || b != 25000 {
		t.Errorf("balances A %d B %d, want 5000 25000", a, b)
	}
}
