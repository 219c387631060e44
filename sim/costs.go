package sim

// accrueCosts charges this tick's liquidity, overdraft, collateral and
// delay costs to every agent (the spec's rounding, in integer cents), and
// the deadline penalty of payments that went overdue this tick and are
// still queued: a Q1 payment past its deadline is marked here, a Q2 one
// was marked by this tick's Q2 pass (SimCash's accrue_costs).
func (s *Sim) accrueCosts() {
	sc := &s.scaled
	t := int32(s.tick)
	dp := &s.cfg.Costs.DeadlinePenalty
	for _, a := range s.agents {
		var c Costs
		if a.allocated > 0 {
			c.Liquidity = mulAddDiv(a.allocated, sc.liquidity, 5e9, 1e10)
		}
		if a.balance < 0 {
			c.Overdraft = mulAddDiv(-a.balance, sc.overdraft, 5e6, 1e7)
		}
		if a.posted > 0 {
			c.Collateral = mulAddDiv(a.posted, sc.collateral, 5e9, 1e10)
		}
		var weighted int64
		for _, id := range a.q1 {
			tx := &s.txs[id]
			if s.markOverdue(tx) {
				c.DeadlinePenalty += s.overduePenalty(a, tx, dp)
			}
			weighted += s.delayWeight(tx)
		}
		a.q2Weighted = weighted
		a.tickCosts = c
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		a := s.agents[tx.Sender]
		if tx.Overdue && tx.overdueSince == t {
			a.tickCosts.DeadlinePenalty += s.overduePenalty(a, tx, dp)
		}
		a.q2Weighted += s.delayWeight(tx)
	}
	for _, a := range s.agents {
		c := a.tickCosts
		if a.q2Weighted > 0 {
			c.Delay = mulAddDiv(a.q2Weighted, sc.delay, 5e8, 1e9)
		}
		a.day.add(c)
		a.total.add(c)
		if s.log != nil && c != (Costs{}) {
			cc := c
			s.emit(LogEntry{Kind: EvCost, Agent: a.idx, Counterparty: -1, Tx: -1, Amount: c.Total(), Costs: &cc})
		}
	}
}

func (s *Sim) overduePenalty(a *agent, tx *Tx, dp *Penalty) int64 {
	p := dp.Of(tx.Amount)
	if s.log != nil {
		s.emit(LogEntry{Kind: EvOverdue, Agent: a.idx, Counterparty: tx.Receiver, Tx: tx.ID, Amount: p})
	}
	return p
}

// delayWeight is remaining * m with m = trunc(ovd*pm/1000) in thousandths.
func (s *Sim) delayWeight(tx *Tx) int64 {
	ovd := int64(1000)
	if tx.Overdue {
		ovd = s.scaled.overdueM
	}
	band := 1
	switch {
	case tx.Priority >= 8:
		band = 2
	case tx.Priority <= 3:
		band = 0
	}
	m := ovd * s.scaled.prioM[band] / 1000
	return tx.Remaining * m
}
