package sim

import (
	"cmp"
	"errors"
	"math"
	"slices"
)

var errSplitTooFew = errors.New("a split needs num_splits >= 2 (and stagger_first_now <= num_splits)")

// budgetAllows applies the bank tree's release budget for this tick
// (can_release_to_counterparty, then track_release).
func (s *Sim) budgetAllows(a *agent, tx *Tx) bool {
	if !a.budgetOn {
		return true
	}
	amt := tx.Remaining
	if amt > a.budgetLeft {
		return false
	}
	if a.focus != nil && !a.focus[tx.Receiver] {
		return false
	}
	if a.perCptyOn && a.cptyUsed[tx.Receiver]+amt > a.perCpty {
		return false
	}
	a.budgetLeft -= amt
	if a.cptyUsed != nil {
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

// transfer moves tx's remaining amount from sender to receiver; with
// deferred the receiver sees it only at the end of the tick.
func (s *Sim) transfer(tx *Tx, deferred bool) {
	a, b := s.agents[tx.Sender], s.agents[tx.Receiver]
	amt := tx.Remaining
	a.balance -= amt
	if deferred {
		b.credit += amt
	} else {
		b.balance += amt
	}
	a.recordOutflow(tx.Receiver, amt)
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
	if tx.Parent >= 0 && kind == EvSettle {
		// SimCash reduces a parent's remaining amount only when a part
		// settles through RTGS (not through the LSM).
		p := &s.txs[tx.Parent]
		if p.rtgsLeft -= amt; p.rtgsLeft == 0 {
			p.rtgsDone = true
		}
	}
	s.settledUp(tx)
}

// settledUp marks split parents settled (recursively) when all their
// parts are.
func (s *Sim) settledUp(tx *Tx) {
	for tx.Parent >= 0 {
		p := &s.txs[tx.Parent]
		p.childrenLeft--
		if p.childrenLeft > 0 {
			return
		}
		p.Status = TxSettled
		p.SettledTick = int32(s.tick)
		tx = p
	}
}

// settledCounts counts each agent's settled original payments as SimCash
// reports them: a payment that was split counts when each of its parts is
// settled, a part that was itself split counting only when its own parts
// all settled through RTGS.
func (s *Sim) settledCounts() []int {
	counts := make([]int, len(s.agents))
	for i := range s.txs {
		tx := &s.txs[i]
		if tx.Parent >= 0 {
			continue
		}
		if tx.children == 0 {
			if tx.Status == TxSettled {
				counts[tx.Sender]++
			}
			continue
		}
		if s.partsSettled(tx) {
			counts[tx.Sender]++
		}
	}
	return counts
}

// settlePending tries each released payment once; what cannot settle
// enters Q2.
func (s *Sim) settlePending() {
	for _, id := range s.pending {
		tx := &s.txs[id]
		if tx.Status == TxSettled {
			continue
		}
		if s.canPay(tx) {
			s.transfer(tx, s.cfg.DeferredCrediting)
			s.finish(tx, EvSettle)
			continue
		}
		s.enterQ2(id)
	}
	s.pending = s.pending[:0]
}

func (s *Sim) enterQ2(id int32) {
	tx := &s.txs[id]
	tx.inQ2 = true
	a := s.agents[tx.Sender]
	a.q2Count++
	a.q2Value += tx.Remaining
	s.q2 = append(s.q2, id)
	if s.log != nil {
		s.emit(LogEntry{Kind: EvQueued, Agent: tx.Sender, Counterparty: tx.Receiver, Tx: id, Amount: tx.Remaining})
	}
}

// sortQ2 orders Q2 by RTGS priority (HighlyUrgent first), then submission
// tick, stably, when priority mode is on.
func (s *Sim) sortQ2() {
	if !s.cfg.PriorityMode || len(s.q2) < 2 {
		return
	}
	key := func(tx *Tx) (int8, int32) {
		if tx.rtgs == rtgsNone {
			return rtgsNormal, math.MaxInt32
		}
		return tx.rtgs, tx.rtgsTick
	}
	slices.SortStableFunc(s.q2, func(x, y int32) int {
		px, tx := key(&s.txs[x])
		py, ty := key(&s.txs[y])
		if c := cmp.Compare(px, py); c != 0 {
			return c
		}
		return cmp.Compare(tx, ty)
	})
}

// processQueue makes one pass over Q2 in order: marks payments past their
// deadline overdue and settles what the sender can now pay (process_queue).
// It returns the value settled.
func (s *Sim) processQueue(deferred bool) int64 {
	var value int64
	keep := s.q2[:0]
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Status == TxSettled {
			continue
		}
		s.markOverdue(tx)
		if s.canPay(tx) {
			value += tx.Remaining
			s.transfer(tx, deferred)
			s.finish(tx, EvSettle)
			continue
		}
		keep = append(keep, id)
	}
	s.q2 = keep
	return value
}

// partsSettled reports whether every part of split payment tx is settled
// in SimCash's sense.
func (s *Sim) partsSettled(tx *Tx) bool {
	for id := tx.firstChild; id < tx.firstChild+tx.children; id++ {
		c := &s.txs[id]
		if c.children == 0 && c.Status != TxSettled || c.children > 0 && !c.rtgsDone {
			return false
		}
	}
	return true
}
