package sim

import (
	"slices"
	"testing"
)

// Policy that releases a payment when the snapshot's available liquidity
// covers it and holds it otherwise.
const releaseIfCoveredJSON = `{"version":"1.0","policy_id":"covered","parameters":{},"payment_tree":{` +
	`"type":"condition","node_id":"N1",` +
	`"condition":{"op":">=","left":{"field":"available_liquidity"},"right":{"field":"remaining_amount"}},` +
	`"on_true":{"type":"action","node_id":"R","action":"Release","parameters":{}},` +
	`"on_false":{"type":"action","node_id":"H","action":"Hold","parameters":{}}}}`

// dropJSON drops every payment.
const dropJSON = `{"version":"1.0","policy_id":"drop","parameters":{},` +
	`"payment_tree":{"type":"action","node_id":"D","action":"Drop","parameters":{}}}`

func TestDeferredCrediting(t *testing.T) {
	// A pays B 10000 at tick 0; B (no money of its own) pays C 10000 at tick 0.
	cases := []struct {
		deferred bool
		want     []int32 // settled tick of A->B, B->C
		wantC    []int64 // C's end-of-tick balances
	}{
		// B's credit is usable at once (A's payment is settled first)
		{false, []int32{0, 0}, []int64{10000, 10000, 10000}},
		// B's credit lands at the end of tick 0: B->C waits in Q2 and settles at tick 1
		{true, []int32{0, 1}, []int64{0, 10000, 10000}},
	}
	for _, tc := range cases {
		c := lsmConfig(3, 1, LSMConfig{}, []int64{10000, 0, 0}, txEvent(0, "A", "B", 10000, 5), txEvent(0, "B", "C", 10000, 5))
		c.DeferredCrediting = tc.deferred
		s := newSim(t, c)
		r := s.Run()
		if got := settledTicks(s); !slices.Equal(got, tc.want) {
			t.Errorf("deferred=%v: settled ticks %v, want %v", tc.deferred, got, tc.want)
		}
		if got := r.Agent("C").BalanceHistory; !slices.Equal(got, tc.wantC) {
			t.Errorf("deferred=%v: C balances %v, want %v", tc.deferred, got, tc.wantC)
		}
	}
}

// Every Q1 payment is decided against one snapshot taken before any decision
// is applied: with 10000 available both 10000 payments look payable, both are
// released, one settles and the other goes to Q2 (not held in Q1).
func TestDecisionsUseOneSnapshot(t *testing.T) {
	c := twoAgents(2, 1, AgentConfig{OpeningBalance: 10000, Policy: mustPolicy(t, releaseIfCoveredJSON)}, AgentConfig{},
		txEvent(0, "A", "B", 10000, 5), txEvent(0, "A", "B", 10000, 5))
	s := newSim(t, c, WithEventLog())
	s.Step()
	k := countKinds(s.Events())
	if k[EvSettle] != 1 || k[EvQueued] != 1 {
		t.Errorf("tick 0: %d settled, %d queued; want 1 and 1", k[EvSettle], k[EvQueued])
	}
	for _, e := range s.Events() {
		if e.Kind == EvDecision && e.Action.String() != "Release" {
			t.Errorf("decision %v for tx %d, want Release", e.Action, e.Tx)
		}
	}
}

// The Q2 pass is FIFO but does not stop at a payment that cannot settle.
func TestQ2PassSkipsUnpayable(t *testing.T) {
	c := twoAgents(3, 1, AgentConfig{}, AgentConfig{},
		txEvent(0, "A", "B", 6000, 5), txEvent(0, "A", "B", 3000, 5),
		Event{Kind: DirectTransfer, Tick: 1, FromAgent: "B", ToAgent: "A", Amount: 3000})
	s := newSim(t, c)
	s.Run()
	// tick 1: A has 3000: the 6000 stays, the 3000 behind it settles
	if got := settledTicks(s); !slices.Equal(got, []int32{-1, 1}) {
		t.Errorf("settled ticks %v, want [-1 1]", got)
	}
}

// A dropped payment leaves the queues: no delay, no deadline or EOD penalty
// afterwards, and it never settles.
func TestDropIsNeverCharged(t *testing.T) {
	c := twoAgents(4, 1, AgentConfig{Policy: mustPolicy(t, dropJSON)}, AgentConfig{}, txEvent(0, "A", "B", 1000, 1))
	c.Costs = DefaultCostRates()
	s := newSim(t, c, WithEventLog())
	r := s.Run()
	if got := r.Agent("A").Costs; got != (Costs{}) {
		t.Errorf("costs %+v, want none", got)
	}
	tx := s.Transactions()[0]
	if tx.Status != TxDropped || !tx.Overdue || tx.SettledTick != -1 {
		t.Errorf("tx %+v, want dropped, marked overdue, unsettled", tx)
	}
	if k := countKinds(s.Events()); k[EvDrop] != 1 || k[EvOverdue] != 0 || k[EvEODPenalty] != 0 {
		t.Errorf("event counts %v", k)
	}
}

func prioEvent(tick int, amount int64, prio int) Event {
	e := txEvent(tick, "A", "B", amount, 5)
	e.Priority = prio
	return e
}

// Queue orderings: Q1 priority_deadline (priority desc, then deadline asc)
// and Q2 priority mode (RTGS priority desc, then submission tick).
func TestQueueOrderings(t *testing.T) {
	cases := []struct {
		name    string
		q1      string
		prioQ2  bool
		balance int64
		events  []Event
		want    []int32 // settled ticks
	}{
		// A can pay one of two 5000 payments at tick 0: FIFO pays the first
		{"q1 fifo", "fifo", false, 5000, []Event{prioEvent(0, 5000, 3), prioEvent(0, 5000, 8)}, []int32{0, -1}},
		// priority_deadline decides (and releases) the priority-8 payment first
		{"q1 priority", "priority_deadline", false, 5000, []Event{prioEvent(0, 5000, 3), prioEvent(0, 5000, 8)}, []int32{-1, 0}},
		// equal priority: earlier deadline first (deadlines 0+5 and 0+2)
		{"q1 deadline", "priority_deadline", false, 5000, []Event{txEvent(0, "A", "B", 5000, 5), txEvent(0, "A", "B", 5000, 2)}, []int32{-1, 0}},
		// both wait in Q2; 5000 arrives at tick 1: FIFO pays the first queued
		{"q2 fifo", "fifo", false, 0, []Event{prioEvent(0, 5000, 3), prioEvent(0, 5000, 8),
			{Kind: DirectTransfer, Tick: 1, FromAgent: "B", ToAgent: "A", Amount: 5000}}, []int32{1, -1}},
		// priority mode orders Q2 by RTGS priority (Normal for both: only
		// ResubmitToRtgs declares another), not by the payments' own priority
		{"q2 priority", "fifo", true, 0, []Event{prioEvent(0, 5000, 3), prioEvent(0, 5000, 8),
			{Kind: DirectTransfer, Tick: 1, FromAgent: "B", ToAgent: "A", Amount: 5000}}, []int32{1, -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := twoAgents(3, 1, AgentConfig{OpeningBalance: tc.balance}, AgentConfig{}, tc.events...)
			c.Queue1Ordering = tc.q1
			c.PriorityMode = tc.prioQ2
			s := newSim(t, c)
			s.Run()
			if got := settledTicks(s); !slices.Equal(got, tc.want) {
				t.Errorf("settled ticks %v, want %v", got, tc.want)
			}
		})
	}
}

// Entry-disposition offsetting only renames SimCash's LSM events: with the
// LSM off nothing is offset either way.
func TestEntryDispositionOffsetting(t *testing.T) {
	for _, on := range []bool{false, true} {
		// A (10000) queues 50000 to B at tick 0; B (0) sends 45000 at tick 1
		c := lsmConfig(3, 1, LSMConfig{}, []int64{10000, 0}, txEvent(0, "A", "B", 50000, 5), txEvent(1, "B", "A", 45000, 5))
		c.EntryDispositionOffsetting = on
		s := newSim(t, c)
		r := s.Run()
		if got := settledTicks(s); !slices.Equal(got, []int32{-1, -1}) {
			t.Errorf("offsetting %v: settled ticks %v, want none", on, got)
		}
		if got := []int64{r.Agent("A").FinalBalance, r.Agent("B").FinalBalance}; !slices.Equal(got, []int64{10000, 0}) {
			t.Errorf("offsetting %v: balances %v, want [10000 0]", on, got)
		}
	}
}
