package sim

// accrueCosts charges this tick's liquidity, overdraft, collateral and
// delay costs to every agent (the spec's rounding, in integer cents).
func (s *Sim) accrueCosts() {
	sc := &s.scaled
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
			weighted += s.delayWeight(&s.txs[id])
		}
		a.q2Weighted = weighted
		a.tickCosts = c
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Status != TxPending || !tx.inQ2 {
			continue
		}
		s.agents[tx.Sender].q2Weighted += s.delayWeight(tx)
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
