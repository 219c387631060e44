package scenario

import (
	"sort"
	"strings"

	"simcash/sim"
	"simcash/yamlfile"
)

// eventSpec lists an event type's own keys (besides type and schedule).
type eventSpec struct {
	kind sim.EventKind
	keys []string
}

var eventSpecs = map[string]eventSpec{
	"CustomTransactionArrival": {sim.CustomTransactionArrival, []string{"from_agent", "to_agent", "amount", "priority", "deadline", "is_divisible"}},
	"DirectTransfer":           {sim.DirectTransfer, []string{"from_agent", "to_agent", "amount"}},
	"ScheduledSettlement":      {sim.ScheduledSettlement, []string{"from_agent", "to_agent", "amount"}},
	"CollateralAdjustment":     {sim.CollateralAdjustment, []string{"agent", "delta"}},
	"GlobalArrivalRateChange":  {sim.GlobalArrivalRateChange, []string{"multiplier"}},
	"AgentArrivalRateChange":   {sim.AgentArrivalRateChange, []string{"agent", "multiplier"}},
	"CounterpartyWeightChange": {sim.CounterpartyWeightChange, []string{"agent", "counterparty", "new_weight", "auto_balance_others"}},
	"DeadlineWindowChange":     {sim.DeadlineWindowChange, []string{"min_ticks_multiplier", "max_ticks_multiplier"}},
}

func eventTypeNames() string {
	names := make([]string, 0, len(eventSpecs))
	for n := range eventSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (l *loader) events(v yamlfile.Value) {
	for _, it := range v.List() {
		if e, ok := l.event(it); ok {
			l.cfg.Events = append(l.cfg.Events, e)
		}
	}
}

func (l *loader) event(v yamlfile.Value) (sim.Event, bool) {
	var e sim.Event
	m := v.Map()
	t := m.Require("type")
	name := t.String("")
	spec, ok := eventSpecs[name]
	if !ok {
		if t.Present() {
			t.Errorf("unknown event type %q; use one of %s", name, eventTypeNames())
		}
		return e, false
	}
	m.Known(append([]string{"type", "schedule"}, spec.keys...)...)
	e.Kind = spec.kind
	l.schedule(m.Require("schedule"), &e)

	switch e.Kind {
	case sim.CustomTransactionArrival, sim.DirectTransfer, sim.ScheduledSettlement:
		e.FromAgent = l.agentRef(m.Require("from_agent"))
		e.ToAgent = l.agentRef(m.Require("to_agent"))
		if e.FromAgent != "" && e.FromAgent == e.ToAgent {
			m.Get("to_agent").Errorf("from_agent and to_agent are both %q; an agent cannot pay itself", e.FromAgent)
		}
		amt := m.Require("amount")
		e.Amount = amt.Money(0)
		if amt.Present() && e.Amount <= 0 {
			amt.Errorf("amount must be > 0 cents, got %d", e.Amount)
		}
		if e.Kind == sim.CustomTransactionArrival {
			e.Priority = intRange(m.Get("priority"), DefaultPriority, 0, 10)
			if d := m.Get("deadline"); d.Present() {
				n := positiveInt(d)
				e.Deadline = &n
			}
			e.Divisible = m.Get("is_divisible").Bool(false)
		}
	case sim.CollateralAdjustment:
		e.Agent = l.agentRef(m.Require("agent"))
		e.Delta = m.Require("delta").Money(0) // either sign
	case sim.GlobalArrivalRateChange, sim.AgentArrivalRateChange:
		if e.Kind == sim.AgentArrivalRateChange {
			e.Agent = l.agentRef(m.Require("agent"))
		}
		mv := m.Require("multiplier")
		e.Multiplier = mv.Float(1)
		if mv.Present() && e.Multiplier <= 0 {
			mv.Errorf("multiplier must be > 0, got %v", e.Multiplier)
		}
	case sim.CounterpartyWeightChange:
		e.Agent = l.agentRef(m.Require("agent"))
		cp := m.Require("counterparty")
		if e.Counterparty = cp.String(""); e.Counterparty != "" && e.Agent != "" {
			if !l.counterparty(cp, e.Agent, e.Counterparty) {
				e.Counterparty = ""
			}
		}
		e.NewWeight = m.Require("new_weight").FloatAtLeast(0, 0)
		if ab := m.Get("auto_balance_others"); ab.Bool(false) {
			ab.Warnf("auto_balance_others is ignored: SimCash's engine records it and leaves the other weights as they are")
		}
	case sim.DeadlineWindowChange:
		lo, hi := m.Get("min_ticks_multiplier"), m.Get("max_ticks_multiplier")
		if !lo.Present() && !hi.Present() {
			v.Errorf("give min_ticks_multiplier, max_ticks_multiplier or both")
		}
		e.MinTicksMultiplier = positiveFloatPtr(lo)
		e.MaxTicksMultiplier = positiveFloatPtr(hi)
	}
	return e, true
}

func positiveFloatPtr(v yamlfile.Value) *float64 {
	if !v.Present() {
		return nil
	}
	f := v.Float(1)
	if f <= 0 {
		v.Errorf("must be > 0, got %v", f)
		return nil
	}
	return &f
}

// agentRef reads an agent id that must exist.
func (l *loader) agentRef(v yamlfile.Value) string {
	id := v.String("")
	if !v.Present() {
		return ""
	}
	if !l.agentIDs[id] {
		v.Errorf("unknown agent %q (agents: %s)", id, l.idList())
		return ""
	}
	return id
}

func (l *loader) schedule(v yamlfile.Value, e *sim.Event) {
	if !v.Present() {
		return
	}
	m := v.Map()
	t := m.Require("type")
	switch t.String("") {
	case "OneTime":
		m.Known("type", "tick")
		e.Tick = m.Require("tick").IntAtLeast(0, 0)
	case "Repeating":
		m.Known("type", "start_tick", "interval", "end_tick")
		e.Tick = m.Require("start_tick").IntAtLeast(0, 0)
		e.Interval = positiveInt(m.Require("interval"))
		if et := m.Get("end_tick"); et.Present() {
			et.Errorf("not implemented: end_tick on Repeating schedules (sim.Event has no end)")
		}
	case "":
		return
	default:
		t.Errorf("unknown schedule type %q; use OneTime or Repeating", t.String(""))
		return
	}
	if end := l.cfg.TicksPerDay * l.cfg.NumDays; end > 0 && e.Tick >= end {
		v.Warnf("tick %d is at or after the end of the run (%d ticks); the event never happens", e.Tick, end)
	}
}
