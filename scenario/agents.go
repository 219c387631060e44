package scenario

import (
	"math"
	"strings"

	"simcash/sim"
	"simcash/yamlfile"
)

var agentKeys = []string{
	"id", "opening_balance", "unsecured_cap", "posted_collateral", "collateral_haircut",
	"max_collateral_capacity", "liquidity_pool", "liquidity_allocation_fraction",
	"bilateral_limits", "multilateral_limit", "limits", "policy", "arrival_config", "arrival_bands",
}

var agentHints = map[string]string{
	"overdraft_rate":      "costs are set in cost_rates.overdraft_bps_per_tick (SimCash ignores this key too)",
	"delay_cost_per_tick": "costs are set in cost_rates.delay_cost_per_tick_per_cent (SimCash ignores this key too)",
}

// agents reads the agent list. Ids are collected first so that weights and
// limits may name agents defined further down.
func (l *loader) agents(v yamlfile.Value) {
	items := v.List()
	if items != nil && len(items) == 0 {
		v.Errorf("at least one agent is required")
	}
	if len(items) > MaxAgents {
		v.Errorf("%d agents: at most %d", len(items), MaxAgents)
		return
	}
	l.agentIDs = make(map[string]bool, len(items))
	firstLine := make(map[string]int, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		if !it.IsMap() {
			it.Errorf("an agent must be a mapping with at least id and opening_balance")
			continue
		}
		idv := it.Map().Require("id")
		id := idv.String("")
		if idv.Present() && id == "" {
			idv.Errorf("agent id must not be empty")
		}
		if id == "" {
			continue
		}
		if line, dup := firstLine[id]; dup {
			idv.Errorf("duplicate agent id %q (first defined at line %d)", id, line)
			continue
		}
		firstLine[id] = idv.Line()
		l.agentIDs[id] = true
		l.idOrder = append(l.idOrder, id)
		ids[i] = id
	}
	for i, it := range items {
		if ids[i] == "" {
			continue
		}
		l.cfg.Agents = append(l.cfg.Agents, l.agent(ids[i], it.Map()))
	}
}

func (l *loader) agent(id string, m yamlfile.Map) sim.AgentConfig {
	m.KnownHint(agentHints, agentKeys...)
	a := sim.AgentConfig{ID: id}
	// opening_balance may be negative (an agent starting in overdraft).
	a.OpeningBalance = m.Require("opening_balance").Money(0)
	a.UnsecuredCap = nonNegMoney(m.Get("unsecured_cap"), 0)
	a.PostedCollateral = nonNegMoney(m.Get("posted_collateral"), 0)
	a.CollateralHaircut = fraction(m.Get("collateral_haircut"), DefaultHaircut)
	a.MaxCollateralCapacity = nonNegMoney(m.Get("max_collateral_capacity"), DefaultCollateralCapFactor*a.UnsecuredCap)
	a.MaxCollateralCapacityDefault = !m.Get("max_collateral_capacity").Present()
	a.LiquidityPool = nonNegMoney(m.Get("liquidity_pool"), 0)
	if v := m.Get("liquidity_allocation_fraction"); v.Present() {
		f := fraction(v, 1)
		a.LiquidityAllocationFraction = &f
	}

	// Limits come either flat on the agent or under limits:, as SimCash
	// files have used both.
	bl, ml := m.Get("bilateral_limits"), m.Get("multilateral_limit")
	if lim := m.Get("limits"); lim.Present() {
		lm := lim.Map()
		lm.Known("bilateral_limits", "multilateral_limit")
		if bl.Present() || ml.Present() {
			lim.Errorf("give limits either under limits: or directly on the agent, not both")
		}
		bl, ml = lm.Get("bilateral_limits"), lm.Get("multilateral_limit")
	}
	if bl.Present() {
		a.BilateralLimits = map[string]int64{}
		blm := bl.Map()
		blm.Each(func(cp string, v yamlfile.Value) {
			if !l.counterparty(blm.KeyAt(cp), id, cp) {
				return
			}
			a.BilateralLimits[cp] = nonNegMoney(v, 0)
		})
	}
	if ml.Present() {
		n := nonNegMoney(ml, 0)
		a.MultilateralLimit = &n
	}

	a.Policy = l.policy(id, m.Get("policy"))

	ac, ab := m.Get("arrival_config"), m.Get("arrival_bands")
	if ac.Present() {
		a.Arrivals = l.arrivals(id, ac.Map())
	}
	if ab.Present() {
		if ac.Present() {
			ab.Errorf("give arrival_config or arrival_bands, not both (SimCash refuses both)")
		}
		a.Bands = l.bands(id, ab)
	}
	return a
}

// counterparty checks that cp names another agent; at locates the message.
func (l *loader) counterparty(at yamlfile.Value, self, cp string) bool {
	switch {
	case cp == self:
		at.Errorf("agent %q cannot pay itself", self)
	case !l.agentIDs[cp]:
		at.Errorf("unknown counterparty %q (agents: %s)", cp, l.idList())
	default:
		return true
	}
	return false
}

func (l *loader) idList() string { return strings.Join(l.idOrder, ", ") }

func (l *loader) arrivals(id string, m yamlfile.Map) *sim.ArrivalConfig {
	m.Known("rate_per_tick", "amount_distribution", "counterparty_weights", "deadline_range",
		"priority", "priority_distribution", "divisible")
	ac := &sim.ArrivalConfig{
		RatePerTick: rate(m.Require("rate_per_tick")),
		Amount:      amountDistribution(m.Require("amount_distribution")),
		Divisible:   m.Get("divisible").Bool(false),
		Priority:    intRange(m.Get("priority"), DefaultPriority, 0, 10),
	}
	ac.CounterpartyWeights = l.weights(id, m.Get("counterparty_weights"))

	dr := m.Require("deadline_range")
	if r := dr.List(); dr.Present() && r != nil {
		if len(r) != 2 {
			dr.Errorf("want [min_ticks, max_ticks], got %d values", len(r))
		} else {
			ac.DeadlineMin, ac.DeadlineMax = r[0].Int(0), r[1].Int(0)
			switch {
			case ac.DeadlineMin <= 0:
				r[0].Errorf("deadline_range min must be > 0, got %d", ac.DeadlineMin)
			case ac.DeadlineMax < ac.DeadlineMin:
				dr.Errorf("deadline_range is reversed: max %d < min %d", ac.DeadlineMax, ac.DeadlineMin)
			}
		}
	}

	if pd := m.Get("priority_distribution"); pd.Present() {
		pm := pd.Map()
		t := pm.Require("type")
		switch t.String("") {
		case "Fixed":
			pm.Known("type", "value")
			ac.Priority = intRange(pm.Require("value"), DefaultPriority, 0, 10)
		case "Uniform":
			pm.Known("type", "min", "max")
			lo := intRange(pm.Require("min"), 0, 0, 10)
			hi := intRange(pm.Require("max"), 10, 0, 10)
			if hi < lo {
				pd.Errorf("priority range is reversed: max %d < min %d", hi, lo)
			}
			ac.PriorityDist = &sim.Distribution{Kind: sim.Uniform, Min: int64(lo), Max: int64(hi)}
		case "Categorical":
			pm.Known("type", "values", "weights")
			ac.PriorityDist = categorical(pm)
		case "":
		default:
			t.Errorf("unknown priority distribution %q; use Fixed, Uniform or Categorical", t.String(""))
		}
	}
	return ac
}

func amountDistribution(v yamlfile.Value) sim.Distribution {
	var d sim.Distribution
	if !v.Present() {
		return d
	}
	m := v.Map()
	t := m.Require("type")
	switch t.String("") {
	case "Uniform":
		m.Known("type", "min", "max")
		d.Kind = sim.Uniform
		d.Min = nonNegMoney(m.Require("min"), 0)
		d.Max = nonNegMoney(m.Require("max"), 0)
		if d.Max < d.Min {
			v.Errorf("Uniform range is reversed: max %d < min %d", d.Max, d.Min)
		}
	case "Normal":
		m.Known("type", "mean", "std_dev")
		d.Kind = sim.Normal
		d.Mean = m.Require("mean").Float(0)
		d.StdDev = m.Require("std_dev").FloatAtLeast(0, 0)
	case "LogNormal":
		m.Known("type", "mean", "std_dev")
		d.Kind = sim.LogNormal
		mean := m.Require("mean")
		d.Mean = mean.Float(0)
		if mean.Present() && d.Mean <= 0 {
			mean.Errorf("LogNormal mean must be > 0, got %v", d.Mean)
		}
		if mean.Present() && d.Mean > 0 && d.Mean < 100 {
			// Older SimCash files give log-scale parameters here; the engine
			// reads them as the amount's mean and standard deviation in cents.
			mean.Warnf("LogNormal mean %v is read as the mean amount in cents (%v cents); if it is a log-scale mean, give the amount's mean instead (e^%v ~ %.0f cents)", d.Mean, d.Mean, d.Mean, math.Exp(d.Mean))
		}
		d.StdDev = m.Require("std_dev").FloatAtLeast(0, 0)
	case "Exponential":
		m.Known("type", "lambda")
		d.Kind = sim.Exponential
		lam := m.Require("lambda")
		d.Lambda = lam.Float(0)
		if lam.Present() && d.Lambda <= 0 {
			lam.Errorf("lambda must be > 0, got %v", d.Lambda)
		}
	case "":
	default:
		t.Errorf("unknown distribution %q; use Uniform, Normal, LogNormal or Exponential", t.String(""))
	}
	return d
}

// categorical reads a Categorical priority distribution: values 0..10
// with one non-negative weight each.
func categorical(pm yamlfile.Map) *sim.Distribution {
	d := &sim.Distribution{Kind: sim.Categorical, Cat: &sim.Categories{}}
	vals, ws := pm.Require("values"), pm.Require("weights")
	for _, v := range vals.List() {
		d.Cat.Values = append(d.Cat.Values, int64(intRange(v, 5, 0, 10)))
	}
	for _, w := range ws.List() {
		d.Cat.Weights = append(d.Cat.Weights, w.FloatAtLeast(0, 0))
	}
	if vals.Present() && ws.Present() && len(d.Cat.Values) != len(d.Cat.Weights) {
		ws.Errorf("want one weight per value: %d values, %d weights", len(d.Cat.Values), len(d.Cat.Weights))
	}
	if vals.Present() && len(d.Cat.Values) == 0 {
		vals.Errorf("want at least one priority value")
	}
	return d
}

// bands reads arrival_bands: urgent (priority 8-10), normal (4-7) and low
// (0-3), at least one of them.
func (l *loader) bands(id string, v yamlfile.Value) *sim.ArrivalBands {
	m := v.Map()
	m.Known("urgent", "normal", "low")
	b := &sim.ArrivalBands{}
	for _, x := range []struct {
		key string
		dst **sim.ArrivalBand
	}{{"urgent", &b.Urgent}, {"normal", &b.Normal}, {"low", &b.Low}} {
		bv := m.Get(x.key)
		if !bv.Present() {
			continue
		}
		bm := bv.Map()
		bm.Known("rate_per_tick", "amount_distribution", "deadline_offset_min", "deadline_offset_max", "counterparty_weights", "divisible")
		band := &sim.ArrivalBand{
			RatePerTick: rate(bm.Require("rate_per_tick")),
			Amount:      amountDistribution(bm.Require("amount_distribution")),
			Divisible:   bm.Get("divisible").Bool(false),
		}
		lo, hi := bm.Require("deadline_offset_min"), bm.Require("deadline_offset_max")
		band.DeadlineMin, band.DeadlineMax = lo.Int(1), hi.Int(1)
		if lo.Present() && band.DeadlineMin <= 0 {
			lo.Errorf("deadline_offset_min must be > 0, got %d", band.DeadlineMin)
		}
		if hi.Present() && band.DeadlineMax < band.DeadlineMin {
			hi.Errorf("deadline_offset_max %d is below deadline_offset_min %d", band.DeadlineMax, band.DeadlineMin)
		}
		band.CounterpartyWeights = l.weights(id, bm.Get("counterparty_weights"))
		*x.dst = band
	}
	if b.Urgent == nil && b.Normal == nil && b.Low == nil {
		v.Errorf("arrival_bands needs at least one of urgent, normal, low")
	}
	return b
}

// weights reads counterparty_weights (absent: nil, uniform choice).
func (l *loader) weights(id string, w yamlfile.Value) map[string]float64 {
	if !w.Present() {
		return nil
	}
	wm := w.Map()
	out := make(map[string]float64, wm.Len())
	sum := 0.0
	wm.Each(func(cp string, v yamlfile.Value) {
		if !l.counterparty(wm.KeyAt(cp), id, cp) {
			return
		}
		f := v.FloatAtLeast(0, 0)
		out[cp] = f
		sum += f
	})
	if wm.Len() > 0 && sum <= 0 {
		w.Errorf("weights must sum to more than 0")
	}
	return out
}

// rate reads a rate_per_tick: from 0 to MaxRatePerTick.
func rate(v yamlfile.Value) float64 {
	r := v.FloatAtLeast(0, 0)
	if r > MaxRatePerTick {
		v.Errorf("must be at most %d payments per tick, got %g", MaxRatePerTick, r)
		return 0
	}
	return r
}
