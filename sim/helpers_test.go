package sim

import (
	"testing"

	"simcash/policy"
)

// Policy documents used by the tests.
const (
	holdJSON = `{"version":"1.0","policy_id":"hold","parameters":{},` +
		`"payment_tree":{"type":"action","node_id":"A1","action":"Hold","parameters":{}}}`
	split3JSON = `{"version":"1.0","policy_id":"split3","parameters":{},` +
		`"payment_tree":{"type":"action","node_id":"S1","action":"Split","parameters":{"num_splits":{"value":3}}}}`
	// holdBigJSON holds payments above 50,000 cents and releases the rest.
	holdBigJSON = `{"version":"1.0","policy_id":"hold_big","parameters":{},"payment_tree":{` +
		`"type":"condition","node_id":"N1",` +
		`"condition":{"op":">","left":{"field":"amount"},"right":{"value":50000}},` +
		`"on_true":{"type":"action","node_id":"H","action":"Hold","parameters":{}},` +
		`"on_false":{"type":"action","node_id":"R","action":"Release","parameters":{}}}}`
)

func mustPolicy(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	return p
}

// zeroCosts switches every cost off so that a test can turn on exactly one.
func zeroCosts() CostRates {
	return CostRates{OverdueDelayMultiplier: 1}
}

// txEvent is a one-time CustomTransactionArrival with a relative deadline.
func txEvent(tick int, from, to string, amount int64, deadline int) Event {
	return Event{Kind: CustomTransactionArrival, Tick: tick, FromAgent: from, ToAgent: to, Amount: amount, Priority: 5, Deadline: intp(deadline)}
}

// twoAgents is a tiny A/B scenario with every cost off and no arrivals.
func twoAgents(tpd, days int, a, b AgentConfig, events ...Event) *Config {
	a.ID, b.ID = "A", "B"
	return &Config{TicksPerDay: tpd, NumDays: days, Seed: 1, Costs: zeroCosts(), Agents: []AgentConfig{a, b}, Events: events}
}

func newSim(t testing.TB, c *Config, opts ...Option) *Sim {
	t.Helper()
	s, err := New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countKinds counts the log entries of each kind.
func countKinds(evs []LogEntry) map[LogKind]int {
	m := map[LogKind]int{}
	for _, e := range evs {
		m[e.Kind]++
	}
	return m
}
