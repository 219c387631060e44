// Package scenariogen generates random SimCash scenario files from a seed,
// for differential tests against SimCash's own engine. Each scenario mixes
// the format's features: 2 to 12 banks, every amount distribution,
// deadlines and the end-of-day cap, priorities (fixed, uniform,
// categorical, arrival bands), divisible payments, the LSM (bilateral,
// cycles, cycle lengths), deferred crediting, credit, collateral and
// haircuts, bilateral and multilateral limits, liquidity pools and
// fractions, every scenario event type (one-time and repeating), both Q1
// orderings, priority mode, escalation, algorithm sequencing,
// entry-disposition offsetting, the EOD rush threshold, several days, the
// built-in policies and JSON policy files.
//
// Values stay where SimCash's engine runs (positive amounts, positive
// multipliers, credit that never goes below zero), so that a difference
// is a difference of the engines, not of input validation.
package scenariogen

import (
	"fmt"
	"math/rand/v2"

	"go.yaml.in/yaml/v3"
)

// Options shape the generated scenarios.
type Options struct {
	// PolicyFiles are JSON policy files an agent may use (FromJson).
	PolicyFiles []string
	// MaxAgents bounds the bank count (2..12); 0 means 12.
	MaxAgents int
}

type m = map[string]any

// Generate returns the YAML of the scenario for seed.
func Generate(seed uint64, o Options) []byte {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), o: o}
	b, err := yaml.Marshal(g.scenario(seed))
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return b
}

type gen struct {
	r   *rand.Rand
	o   Options
	ids []string
	tpd int
	n   int // ticks in the run
}

func (g *gen) chance(p float64) bool  { return g.r.Float64() < p }
func (g *gen) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }
func (g *gen) pick(xs ...string) string {
	return xs[g.r.IntN(len(xs))]
}
func (g *gen) round(x float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(x*p)) / p
}

func (g *gen) scenario(seed uint64) m {
	maxA := g.o.MaxAgents
	if maxA < 2 || maxA > 12 {
		maxA = 12
	}
	na := g.between(2, maxA)
	for i := range na {
		g.ids = append(g.ids, fmt.Sprintf("BANK_%02d", i))
	}
	g.tpd = g.between(3, 16)
	days := g.between(1, 3)
	g.n = g.tpd * days
	s := m{
		"simulation": m{"ticks_per_day": g.tpd, "num_days": days, "rng_seed": int(seed%1000000) + 1},
		"cost_rates": g.costs(),
		"lsm_config": m{
			"enable_bilateral":    g.chance(0.6),
			"enable_cycles":       g.chance(0.6),
			"max_cycle_length":    g.between(3, 6),
			"max_cycles_per_tick": g.between(1, 10),
		},
	}
	if g.chance(0.4) {
		s["deferred_crediting"] = true
	}
	if g.chance(0.4) {
		s["deadline_cap_at_eod"] = true
	}
	if g.chance(0.3) {
		s["queue1_ordering"] = "priority_deadline"
	}
	if g.chance(0.3) {
		s["priority_mode"] = true
	}
	if g.chance(0.3) {
		s["priority_escalation"] = m{"enabled": true, "curve": "linear",
			"start_escalating_at_ticks": g.between(1, 8), "max_boost": g.between(1, 5)}
	}
	if g.chance(0.2) {
		s["algorithm_sequencing"] = true
	}
	if g.chance(0.2) {
		s["entry_disposition_offsetting"] = true
	}
	if g.chance(0.3) {
		s["eod_rush_threshold"] = g.round(0.3+0.7*g.r.Float64(), 2)
	}
	var agents []any
	for i := range g.ids {
		agents = append(agents, g.agent(i))
	}
	s["agents"] = agents
	if g.chance(0.6) {
		s["scenario_events"] = g.events()
	}
	return s
}

func (g *gen) costs() m {
	c := m{
		"overdraft_bps_per_tick":       g.round(g.r.Float64()*2, 3),
		"delay_cost_per_tick_per_cent": g.round(g.r.Float64()*0.01, 5),
		"collateral_cost_per_tick_bps": g.round(g.r.Float64()*0.5, 4),
		"liquidity_cost_per_tick_bps":  g.round(g.r.Float64()*5, 3),
		"split_friction_cost":          g.between(0, 3000),
		"overdue_delay_multiplier":     g.round(1+g.r.Float64()*5, 2),
	}
	if g.chance(0.3) {
		c["deadline_penalty"] = m{"mode": "rate", "bps_per_event": g.round(g.r.Float64()*100, 2)}
	} else {
		c["deadline_penalty"] = g.between(0, 100000)
	}
	if g.chance(0.3) {
		c["eod_penalty_per_transaction"] = m{"mode": "rate", "bps_per_event": g.round(g.r.Float64()*200, 2)}
	} else {
		c["eod_penalty_per_transaction"] = g.between(0, 200000)
	}
	if g.chance(0.3) {
		c["priority_delay_multipliers"] = m{"urgent_multiplier": g.round(1+g.r.Float64()*2, 2),
			"normal_multiplier": 1.0, "low_multiplier": g.round(0.2+g.r.Float64()*0.8, 2)}
	}
	return c
}

func (g *gen) agent(i int) m {
	a := m{"id": g.ids[i], "opening_balance": g.between(0, 20) * 10000}
	if g.chance(0.6) {
		a["unsecured_cap"] = g.between(0, 20) * 10000
	}
	if g.chance(0.3) {
		a["posted_collateral"] = g.between(0, 20) * 10000
		a["collateral_haircut"] = g.round(g.r.Float64()*0.3, 2)
	}
	if g.chance(0.3) {
		a["max_collateral_capacity"] = g.between(10, 100) * 10000
	}
	if g.chance(0.3) {
		a["liquidity_pool"] = g.between(1, 50) * 10000
		if g.chance(0.6) {
			a["liquidity_allocation_fraction"] = g.round(g.r.Float64(), 2)
		}
	}
	if g.chance(0.2) {
		lim := m{}
		if g.chance(0.6) {
			bl := m{}
			for _, id := range g.others(i) {
				if g.chance(0.5) {
					bl[id] = g.between(5, 100) * 10000
				}
			}
			lim["bilateral_limits"] = bl
		}
		if g.chance(0.6) {
			lim["multilateral_limit"] = g.between(10, 200) * 10000
		}
		a["limits"] = lim
	}
	a["policy"] = g.policy()
	switch {
	case g.chance(0.15):
		a["arrival_bands"] = g.bands(i)
	case g.chance(0.85):
		a["arrival_config"] = g.arrivals(i)
	}
	return a
}

func (g *gen) others(i int) []string {
	var out []string
	for j, id := range g.ids {
		if j != i {
			out = append(out, id)
		}
	}
	return out
}

func (g *gen) weights(i int) m {
	w := m{}
	others := g.others(i)
	for _, id := range others {
		if g.chance(0.7) {
			w[id] = g.round(0.1+g.r.Float64(), 2)
		}
	}
	if len(w) == 0 {
		w[others[g.r.IntN(len(others))]] = 1.0
	}
	return w
}

func (g *gen) amount() m {
	switch g.r.IntN(4) {
	case 0:
		lo := g.between(1, 50) * 1000
		// SimCash's schema wants max > min.
		return m{"type": "Uniform", "min": lo, "max": lo + g.between(1, 100)*1000}
	case 1:
		return m{"type": "Normal", "mean": g.between(5, 100) * 1000, "std_dev": g.between(1, 40) * 1000}
	case 2:
		return m{"type": "LogNormal", "mean": g.between(5, 100) * 1000, "std_dev": g.between(1, 60) * 1000}
	default:
		return m{"type": "Exponential", "lambda": g.round(1/float64(g.between(5, 100)*1000), 8)}
	}
}

func (g *gen) arrivals(i int) m {
	lo := g.between(1, 6)
	a := m{
		"rate_per_tick":       g.round(0.1+g.r.Float64()*2, 2),
		"amount_distribution": g.amount(),
		"deadline_range":      []int{lo, lo + g.between(0, 8)},
	}
	// SimCash's schema requires at least one weight.
	a["counterparty_weights"] = g.weights(i)
	switch g.r.IntN(4) {
	case 0:
		a["priority"] = g.between(0, 10)
	case 1:
		plo := g.between(0, 10)
		a["priority_distribution"] = m{"type": "Uniform", "min": plo, "max": g.between(plo, 10)}
	case 2:
		a["priority_distribution"] = m{"type": "Categorical", "values": []int{g.between(0, 3), g.between(4, 7), g.between(8, 10)},
			"weights": []float64{g.round(g.r.Float64(), 2) + 0.01, g.round(g.r.Float64(), 2), g.round(g.r.Float64(), 2)}}
	default:
		a["priority_distribution"] = m{"type": "Fixed", "value": g.between(0, 10)}
	}
	if g.chance(0.3) {
		a["divisible"] = true
	}
	return a
}

func (g *gen) bands(i int) m {
	b := m{}
	for _, name := range []string{"urgent", "normal", "low"} {
		if len(b) > 0 && g.chance(0.4) {
			continue
		}
		lo := g.between(1, 5)
		band := m{"rate_per_tick": g.round(0.1+g.r.Float64(), 2), "amount_distribution": g.amount(),
			"deadline_offset_min": lo, "deadline_offset_max": lo + g.between(0, 6)}
		if g.chance(0.5) {
			band["counterparty_weights"] = g.weights(i)
		}
		b[name] = band
	}
	return b
}

func (g *gen) policy() m {
	n := 5
	if len(g.o.PolicyFiles) > 0 {
		n = 7
	}
	switch g.r.IntN(n) {
	case 0:
		return m{"type": "Fifo"}
	case 1:
		return m{"type": "Deadline", "urgency_threshold": g.between(1, 6)}
	case 2:
		return m{"type": "LiquidityAware", "target_buffer": g.between(0, 10) * 10000, "urgency_threshold": g.between(1, 6)}
	case 3:
		return m{"type": "LiquiditySplitting", "max_splits": g.between(2, 5), "min_split_amount": 1000}
	case 4:
		return m{"type": "MockSplitting", "num_splits": g.between(2, 4)}
	default:
		return m{"type": "FromJson", "json_path": g.o.PolicyFiles[g.r.IntN(len(g.o.PolicyFiles))]}
	}
}

func (g *gen) schedule() m {
	if g.chance(0.3) {
		return m{"type": "Repeating", "start_tick": g.between(0, g.n-1), "interval": g.between(1, max(1, g.n/2))}
	}
	return m{"type": "OneTime", "tick": g.between(0, g.n-1)}
}

func (g *gen) events() []any {
	var out []any
	for range g.between(1, 6) {
		from := g.r.IntN(len(g.ids))
		to := g.others(from)[g.r.IntN(len(g.ids)-1)]
		e := m{}
		switch g.r.IntN(8) {
		case 0:
			e = m{"type": "CustomTransactionArrival", "from_agent": g.ids[from], "to_agent": to,
				"amount": g.between(1, 100) * 1000, "priority": g.between(0, 10), "deadline": g.between(1, 8)}
			if g.chance(0.3) {
				e["is_divisible"] = true
			}
		case 1:
			e = m{"type": "DirectTransfer", "from_agent": g.ids[from], "to_agent": to, "amount": g.between(1, 100) * 1000}
		case 2:
			e = m{"type": "ScheduledSettlement", "from_agent": g.ids[from], "to_agent": to, "amount": g.between(1, 100) * 1000}
		case 3:
			e = m{"type": "CollateralAdjustment", "agent": g.ids[from], "delta": g.between(0, 20) * 10000}
		case 4:
			e = m{"type": "GlobalArrivalRateChange", "multiplier": g.round(0.2+g.r.Float64()*2, 2)}
		case 5:
			e = m{"type": "AgentArrivalRateChange", "agent": g.ids[from], "multiplier": g.round(0.2+g.r.Float64()*2, 2)}
		case 6:
			e = m{"type": "CounterpartyWeightChange", "agent": g.ids[from], "counterparty": to, "new_weight": g.round(g.r.Float64(), 2)}
		default:
			lo := g.round(0.5+g.r.Float64(), 2)
			e = m{"type": "DeadlineWindowChange", "min_ticks_multiplier": lo, "max_ticks_multiplier": g.round(lo+g.r.Float64(), 2)}
		}
		e["schedule"] = g.schedule()
		out = append(out, e)
	}
	return out
}
