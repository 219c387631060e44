package sim

import "math"

func floorF(x float64) float64 { return math.Floor(x) }

// budgetAllows applies the bank tree's release budget for this tick.
func (s *Sim) budgetAllows(a *agent, tx *Tx) bool {
	if !a.budgetOn {
		return true
	}
	amt := float64(tx.Remaining)
	if a.focus != nil && !a.focus[tx.Receiver] {
		return false
	}
	if amt > a.budgetLeft {
		return false
	}
	if a.perCptyOn && a.cptyUsed[tx.Receiver]+amt > a.perCpty {
		return false
	}
	a.budgetLeft -= amt
	if a.perCptyOn {
		a.cptyUsed[tx.Receiver] += amt
	}
	return true
}

// limitsAllow checks the sender's daily bilateral and multilateral outflow
// limits for an outflow of amt to receiver r.
func (a *agent) limitsAllow(r int32, amt int64) bool {
	if a.multiCap >= 0 && a.outflow+amt > a.multiCap {
		return false
	}
	if a.bilCap != nil && a.bilCap[r] >= 0 && a.bilOut[r]+amt > a.bilCap[r] {
		return false
	}
	return true
}

func (a *agent) recordOutflow(r int32, amt int64) {
	a.outflow += amt
	if a.bilOut != nil {
		a.bilOut[r] += amt
	}
}

// canPay reports whether the sender can settle tx now.
func (s *Sim) canPay(tx *Tx) bool {
	a := s.agents[tx.Sender]
	return tx.Remaining <= a.available() && a.limitsAllow(tx.Receiver, tx.Remaining)
}

// settle moves the whole remaining amount from sender to receiver. With
// deferred crediting the receiver sees the money only at the end of the tick.
func (s *Sim) settle(tx *Tx) {
	a, b := s.agents[tx.Sender], s.agents[tx.Receiver]
	amt := tx.Remaining
	a.balance -= amt
	if s.cfg.DeferredCrediting {
		b.credit += amt
	} else {
		b.balance += amt
	}
	a.recordOutflow(tx.Receiver, amt)
	s.finish(tx, EvSettle)
}

// finish marks tx settled (its amount has already moved) and counts it.
func (s *Sim) finish(tx *Tx, kind LogKind) {
	amt := tx.Remaining
	tx.Remaining = 0
	tx.Status = TxSettled
	tx.SettledTick = int32(s.tick)
	if tx.inQ2 {
		tx.inQ2 = false
		a := s.agents[tx.Sender]
		a.q2Count--
		a.q2Value -= amt
	}
	if s.log != nil {
		s.emit(LogEntry{Kind: kind, Agent: tx.Sender, Counterparty: tx.Receiver, Tx: tx.ID, Amount: amt})
	}
	if tx.Parent >= 0 {
		p := &s.txs[tx.Parent]
		p.childrenLeft--
		if p.childrenLeft == 0 {
			p.Status = TxSettled
			p.SettledTick = int32(s.tick)
			s.agents[p.Sender].settled++
		}
		return
	}
	s.agents[tx.Sender].settled++
}

// settlePending tries each released payment once; what cannot settle
// enters Q2.
func (s *Sim) settlePending() {
	for _, id := range s.pending {
		tx := &s.txs[id]
		if s.canPay(tx) {
			s.settle(tx)
			continue
		}
		s.enterQ2(id)
	}
	s.pending = s.pending[:0]
}

func (s *Sim) enterQ2(id int32) {
	tx := &s.txs[id]
	tx.inQ2 = true
	tx.q2Tick = int32(s.tick)
	a := s.agents[tx.Sender]
	a.q2Count++
	a.q2Value += tx.Remaining
	if s.log != nil {
		s.emit(LogEntry{Kind: EvQueued, Agent: tx.Sender, Counterparty: tx.Receiver, Tx: id, Amount: tx.Remaining})
	}
	if s.cfg.EntryDispositionOffsetting && s.offsetOnEntry(tx) {
		return
	}
	if s.cfg.PriorityMode {
		// keep Q2 ordered by RTGS priority desc, then submission tick
		i := len(s.q2)
		for i > 0 {
			p := &s.txs[s.q2[i-1]]
			if p.RTGSPrio >= tx.RTGSPrio {
				break
			}
			i--
		}
		s.q2 = append(s.q2, 0)
		copy(s.q2[i+1:], s.q2[i:])
		s.q2[i] = id
		return
	}
	s.q2 = append(s.q2, id)
}

// passQ2 makes one FIFO pass over Q2: overdue marks, then settlement of what
// the sender can now pay. It reports whether anything settled.
func (s *Sim) passQ2() bool {
	progress := false
	keep := s.q2[:0]
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Status != TxPending || !tx.inQ2 {
			continue // settled by the LSM
		}
		s.markOverdue(tx)
		if s.canPay(tx) {
			s.settle(tx)
			progress = true
			continue
		}
		keep = append(keep, id)
	}
	s.q2 = keep
	return progress
}
