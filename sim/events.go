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
		dl := min(s.tick+rel, s.cfg.NumDays*s.tpd)
		if s.cfg.DeadlineCapAtEOD {
			dl = min(dl, (s.tick/s.tpd+1)*s.tpd-1)
		}
		dl = max(dl, s.tick+1)
		id := s.newTx(from, to, e.Amount, dl, e.Priority, e.Divisible, -1)
		s.enqueueArrival(id)
	case DirectTransfer:
		a, b := s.agents[s.byID[e.FromAgent]], s.agents[s.byID[e.ToAgent]]
		a.balance -= e.Amount
		b.balance += e.Amount
		if s.log != nil {
			s.emit(LogEntry{Kind: EvDirectTransfer, Agent: a.idx, Counterparty: b.idx, Tx: -1, Amount: e.Amount})
		}
	case ScheduledSettlement:
		// A payment that bypasses Q1: it settles now if it can, else queues in Q2.
		from, to := s.byID[e.FromAgent], s.byID[e.ToAgent]
		id := s.newTx(from, to, e.Amount, s.tick+1, e.Priority, false, -1)
		s.agents[from].arrivals++
		if tx := &s.txs[id]; s.canPay(tx) {
			s.settle(tx)
		} else {
			s.enterQ2(id)
		}
	case CollateralAdjustment:
		a := s.agents[s.byID[e.Agent]]
		a.unsecuredCap = max(0, a.unsecuredCap+e.Delta)
		if s.log != nil {
			s.emit(LogEntry{Kind: EvCreditChange, Agent: a.idx, Counterparty: -1, Tx: -1, Amount: e.Delta, Value: a.unsecuredCap})
		}
	case GlobalArrivalRateChange:
		for _, a := range s.agents {
			a.rate = a.baseRate * e.Multiplier
		}
	case AgentArrivalRateChange:
		i := s.byID[e.Agent]
		s.agents[i].rate = s.agents[i].baseRate * e.Multiplier
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
			lo, hi := a.baseDl[0], a.baseDl[1]
			if e.MinTicksMultiplier != nil {
				lo = max(1, int64(roundHalfAway(float64(lo)**e.MinTicksMultiplier)))
			}
			if e.MaxTicksMultiplier != nil {
				hi = max(lo, int64(roundHalfAway(float64(hi)**e.MaxTicksMultiplier)))
			}
			a.dlMin, a.dlMax = lo, hi
		}
	}
}
