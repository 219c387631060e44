package sim

import (
	"cmp"
	"fmt"
	"slices"
)

func (s *Sim) initEvents() error {
	for i := range s.cfg.Events {
		e := &s.cfg.Events[i]
		for _, id := range []string{e.FromAgent, e.ToAgent, e.Agent, e.Counterparty} {
			if id == "" {
				continue
			}
			if _, ok := s.byID[id]; !ok {
				return fmt.Errorf("sim: scenario_events[%d]: unknown agent %q", i, id)
			}
		}
		if e.Interval > 0 {
			s.repeat = append(s.repeat, i)
		} else {
			s.once = append(s.once, i)
		}
	}
	slices.SortStableFunc(s.once, func(a, b int) int { return cmp.Compare(s.cfg.Events[a].Tick, s.cfg.Events[b].Tick) })
	return nil
}

// runEvents fires the scenario events due this tick, in config order.
func (s *Sim) runEvents() {
	if len(s.repeat) == 0 {
		for s.onceNext < len(s.once) {
			e := &s.cfg.Events[s.once[s.onceNext]]
			if e.Tick > s.tick {
				return
			}
			s.onceNext++
			if e.Tick == s.tick {
				s.fire(e)
			}
		}
		return
	}
	// With repeating events, config order across both kinds matters.
	for i := range s.cfg.Events {
		e := &s.cfg.Events[i]
		if e.Interval > 0 {
			if s.tick >= e.Tick && (s.tick-e.Tick)%e.Interval == 0 {
				s.fire(e)
			}
		} else if e.Tick == s.tick {
			s.fire(e)
		}
	}
}

func (s *Sim) fire(e *Event) {
	switch e.Kind {
	case CustomTransactionArrival:
		from, to := s.byID[e.FromAgent], s.byID[e.ToAgent]
		rel := max(s.tpd/10, 5)
		if e.Deadline != nil {
			rel = *e.Deadline
		}
		// SimCash refuses a deadline not after the arrival tick; the cap
		// below makes it the next tick.
		dl := min(s.tick+rel, s.cfg.NumDays*s.tpd)
		if s.cfg.DeadlineCapAtEOD {
			dl = min(dl, (s.tick/s.tpd+1)*s.tpd-1)
		}
		dl = max(dl, s.tick+1)
		id := s.newTx(from, to, e.Amount, dl, min(max(e.Priority, 0), 10), e.Divisible, -1)
		s.enqueueArrival(id)
	case DirectTransfer:
		a, b := s.agents[s.byID[e.FromAgent]], s.agents[s.byID[e.ToAgent]]
		a.balance -= e.Amount
		b.balance += e.Amount
		if s.log != nil {
			s.emit(LogEntry{Kind: EvDirectTransfer, Agent: a.idx, Counterparty: b.idx, Tx: -1, Amount: e.Amount})
		}
	case ScheduledSettlement:
		// Settles at once when the sender has the liquidity (limits are not
		// checked), else nothing happens: SimCash creates no payment.
		a, b := s.agents[s.byID[e.FromAgent]], s.agents[s.byID[e.ToAgent]]
		if e.Amount > 0 && e.Amount <= a.available() {
			a.balance -= e.Amount
			b.balance += e.Amount
			if s.log != nil {
				s.emit(LogEntry{Kind: EvDirectTransfer, Agent: a.idx, Counterparty: b.idx, Tx: -1, Amount: e.Amount, Detail: "scheduled_settlement"})
			}
		}
	case CollateralAdjustment:
		// SimCash fails the run when the cap would go below zero; we
		// stop it at zero.
		a := s.agents[s.byID[e.Agent]]
		a.unsecuredCap = max(0, a.unsecuredCap+e.Delta)
		if s.log != nil {
			s.emit(LogEntry{Kind: EvCreditChange, Agent: a.idx, Counterparty: -1, Tx: -1, Amount: e.Delta, Value: a.unsecuredCap})
		}
	case GlobalArrivalRateChange:
		for _, a := range s.agents {
			if a.arr != nil {
				a.rate = a.baseRate * e.Multiplier
			}
		}
	case AgentArrivalRateChange:
		// Compounds with the rate in force, which becomes the base a later
		// global change multiplies.
		if a := s.agents[s.byID[e.Agent]]; a.arr != nil {
			a.rate *= e.Multiplier
			a.baseRate = a.rate
		}
	case CounterpartyWeightChange:
		a := s.agents[s.byID[e.Agent]]
		if a.arr == nil {
			return
		}
		w := make(map[string]float64, len(a.arr.CounterpartyWeights)+1)
		for k, v := range a.arr.CounterpartyWeights {
			w[k] = v
		}
		w[e.Counterparty] = e.NewWeight
		cp := *a.arr
		cp.CounterpartyWeights = w
		a.arr = &cp
		s.setWeights(a)
	case DeadlineWindowChange:
		for _, a := range s.agents {
			if a.arr == nil {
				continue
			}
			if e.MinTicksMultiplier != nil {
				a.dlMin = int64(roundHalfAway(float64(a.dlMin) * *e.MinTicksMultiplier))
			}
			if e.MaxTicksMultiplier != nil {
				a.dlMax = int64(roundHalfAway(float64(a.dlMax) * *e.MaxTicksMultiplier))
			}
			// SimCash panics on an empty range; we keep the minimum.
			a.dlMax = max(a.dlMax, a.dlMin)
		}
	}
}
