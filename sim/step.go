package sim

import (
	"cmp"
	"math"
	"slices"

	"simcash/policy"
)

// Step runs one tick in the order of the spec.
func (s *Sim) Step() {
	t := s.tick
	tid := t % s.tpd
	if tid == 0 && t > 0 {
		s.startDay()
	}
	s.runEvents()
	s.arrivals()
	s.escalatePriorities()
	s.bankAndCollateral(policy.StrategicCollateralTree)
	s.decide()
	s.settlePending()
	s.passQ2()
	if s.cfg.LSM.EnableBilateral || s.cfg.LSM.EnableCycles {
		s.runLSM()
	}
	if s.cfg.DeferredCrediting {
		for _, a := range s.agents {
			if a.credit != 0 {
				a.balance += a.credit
				a.credit = 0
			}
		}
	}
	s.endOfTickCollateral()
	s.accrueCosts()
	if tid == s.tpd-1 {
		s.endOfDay()
	}
	if s.history {
		for _, a := range s.agents {
			a.history = append(a.history, a.balance)
		}
	}
	s.tick++
}

// startDay resets the daily cost accumulators and re-allocates pool liquidity.
func (s *Sim) startDay() {
	for _, a := range s.agents {
		a.days = append(a.days, a.day)
		a.day = Costs{}
		if a.cfg.LiquidityPool > 0 {
			a.allocated = int64(floorF(float64(a.cfg.LiquidityPool) * a.fraction))
			a.balance += a.allocated
		}
	}
}

// endOfDay charges end-of-day penalties, resets daily limits and state
// registers and returns allocated pool liquidity.
func (s *Sim) endOfDay() {
	t := int32(s.tick)
	eod := &s.cfg.Costs.EODPenaltyPerTransaction
	for _, a := range s.agents {
		for _, id := range a.q1 {
			tx := &s.txs[id]
			if tx.Deadline < t {
				s.chargeEOD(a, tx, eod)
			}
		}
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Deadline < t {
			s.chargeEOD(s.agents[tx.Sender], tx, eod)
		}
	}
	for _, a := range s.agents {
		a.outflow = 0
		for i := range a.bilOut {
			a.bilOut[i] = 0
		}
		for i := range a.ctx.State {
			a.ctx.State[i] = 0
		}
		if a.allocated != 0 {
			a.balance -= a.allocated
			a.allocated = 0
		}
	}
}

func (s *Sim) chargeEOD(a *agent, tx *Tx, eod *Penalty) {
	p := eod.Of(tx.Amount)
	a.day.EODPenalty += p
	a.total.EODPenalty += p
	if s.log != nil {
		s.emit(LogEntry{Kind: EvEODPenalty, Agent: a.idx, Counterparty: tx.Receiver, Tx: tx.ID, Amount: p})
	}
}

// newTx appends a payment to the sender's Q1.
func (s *Sim) newTx(sender, receiver int32, amount int64, deadline int, priority int, divisible bool, parent int32) int32 {
	id := int32(len(s.txs))
	s.txs = append(s.txs, Tx{
		ID: id, Sender: sender, Receiver: receiver, Amount: amount, Remaining: amount,
		Arrival: int32(s.tick), Deadline: int32(deadline), Priority: int32(priority), RTGSPrio: int32(priority),
		basePriority: int32(priority), Divisible: divisible, Parent: parent, releaseAt: -1, SettledTick: -1,
	})
	return id
}

func (s *Sim) enqueueArrival(id int32) {
	tx := &s.txs[id]
	a := s.agents[tx.Sender]
	a.arrivals++
	a.q1 = append(a.q1, id)
	if s.log != nil {
		s.emit(LogEntry{Kind: EvArrival, Agent: tx.Sender, Counterparty: tx.Receiver, Tx: id, Amount: tx.Amount, Value: int64(tx.Deadline)})
	}
}

// arrivals draws the stochastic payments, agents in id order.
func (s *Sim) arrivals() {
	runEnd := s.cfg.NumDays * s.tpd
	day := s.tick / s.tpd
	for _, a := range s.agents {
		if a.arr == nil {
			continue
		}
		if a.rate != a.expRate {
			a.expRate, a.expNeg = a.rate, math.Exp(-a.rate)
		}
		n := 0
		if a.rate > 0 {
			n = s.rng.poissonL(a.expNeg)
		}
		for k := 0; k < n; k++ {
			var amount int64
			if a.arr.Amount.Kind == LogNormal {
				amount = s.rng.logNormal(a.logNormal[0], a.logNormal[1])
			} else {
				amount = s.rng.Sample(&a.arr.Amount)
			}
			var cp int32
			if a.weights != nil {
				target := s.rng.Float() * a.weightSum
				cp = a.candidates[len(a.candidates)-1]
				for i, w := range a.weights {
					target -= w
					if target <= 0 {
						cp = a.candidates[i]
						break
					}
				}
			} else {
				cp = a.candidates[s.rng.Range(0, int64(len(a.candidates)))]
			}
			dl := s.tick + int(s.rng.Range(a.dlMin, a.dlMax+1))
			dl = min(dl, runEnd)
			if s.cfg.DeadlineCapAtEOD {
				dl = min(dl, (day+1)*s.tpd)
			}
			dl = max(dl, s.tick+1)
			prio := a.arr.Priority
			if a.arr.PriorityDist != nil {
				prio = int(min(10, max(0, s.rng.Sample(a.arr.PriorityDist))))
			}
			id := s.newTx(a.idx, cp, amount, dl, prio, a.arr.Divisible, -1)
			s.enqueueArrival(id)
		}
	}
}

// escalatePriorities raises queued payments' priority as deadlines near.
func (s *Sim) escalatePriorities() {
	pe := &s.cfg.PriorityEscalation
	if !pe.Enabled || pe.StartEscalatingAtTicks <= 0 || pe.MaxBoost <= 0 {
		return
	}
	esc := func(tx *Tx) {
		ttd := int(tx.Deadline) - s.tick
		if ttd > pe.StartEscalatingAtTicks {
			return
		}
		progress := 1 - float64(max(ttd, 0))/float64(pe.StartEscalatingAtTicks)
		if pe.Curve == "exponential" {
			progress *= progress
		}
		boost := int32(floorF(progress * float64(pe.MaxBoost)))
		tx.Priority = min(10, tx.basePriority+boost)
	}
	for _, a := range s.agents {
		for _, id := range a.q1 {
			esc(&s.txs[id])
		}
	}
	for _, id := range s.q2 {
		esc(&s.txs[id])
	}
}

// markOverdue flags a payment that has passed its deadline and charges the
// deadline penalty once.
func (s *Sim) markOverdue(tx *Tx) {
	if tx.Overdue || int32(s.tick) <= tx.Deadline {
		return
	}
	tx.Overdue = true
	a := s.agents[tx.Sender]
	p := s.cfg.Costs.DeadlinePenalty.Of(tx.Amount)
	a.day.DeadlinePenalty += p
	a.total.DeadlinePenalty += p
	if s.log != nil {
		s.emit(LogEntry{Kind: EvOverdue, Agent: tx.Sender, Counterparty: tx.Receiver, Tx: tx.ID, Amount: p})
	}
}

// decide evaluates each agent's payment tree over its Q1 against one
// snapshot, then applies the decisions in Q1 order.
func (s *Sim) decide() {
	s.q2Stats()
	for _, a := range s.agents {
		if len(a.q1) == 0 {
			continue
		}
		for _, id := range a.q1 {
			s.markOverdue(&s.txs[id])
		}
		if s.cfg.Queue1Ordering == "priority_deadline" {
			slices.SortStableFunc(a.q1, func(x, y int32) int {
				tx, ty := &s.txs[x], &s.txs[y]
				if c := cmp.Compare(ty.Priority, tx.Priority); c != 0 {
					return c
				}
				return cmp.Compare(tx.Deadline, ty.Deadline)
			})
		}
		if a.releaseAll && !a.budgetOn && !s.hasStagger(a) && s.log == nil {
			// Every decision is Release: skip the snapshot and the tree.
			s.pending = append(s.pending, a.q1...)
			a.q1 = a.q1[:0]
			continue
		}
		s.fillAgentContext(a)
		s.decisions = s.decisions[:0]
		for _, id := range a.q1 {
			tx := &s.txs[id]
			if tx.releaseAt >= 0 {
				if int(tx.releaseAt) <= s.tick {
					s.decisions = append(s.decisions, policy.Action{Kind: policy.Release, NodeID: "stagger"})
				} else {
					s.decisions = append(s.decisions, policy.Action{Kind: policy.Hold, NodeID: "stagger"})
				}
				continue
			}
			s.fillTxContext(a, tx)
			act, err := a.pol.Decide(policy.PaymentTree, &a.ctx)
			if err != nil {
				s.policyError(a, policy.PaymentTree, err)
				act = policy.Action{Kind: policy.Hold, Reason: "policy_error"}
			}
			s.decisions = append(s.decisions, act)
		}
		keep := s.keep[:0]
		for i, id := range a.q1 {
			act := s.decisions[i]
			tx := &s.txs[id]
			if s.log != nil {
				s.emit(LogEntry{Kind: EvDecision, Agent: a.idx, Counterparty: tx.Receiver, Tx: id, Amount: tx.Remaining, Action: act.Kind, Node: act.NodeID})
			}
			switch act.Kind {
			case policy.Release, policy.ReleaseWithCredit, policy.ResubmitToRtgs, policy.PaceAndRelease:
				if act.HasPriority {
					tx.RTGSPrio = int32(rtgsPriority(act))
				}
				if act.Kind == policy.PaceAndRelease && act.NumSplits > 1 && tx.Divisible {
					s.split(a, tx, act.NumSplits, 1, 1)
					continue
				}
				if !s.budgetAllows(a, tx) {
					keep = append(keep, id)
					continue
				}
				s.pending = append(s.pending, id)
			case policy.Split, policy.StaggerSplit:
				n := act.NumSplits
				if n <= 1 || !tx.Divisible {
					if !s.budgetAllows(a, tx) {
						keep = append(keep, id)
						continue
					}
					s.pending = append(s.pending, id)
					continue
				}
				first, gap := n, 0
				if act.Kind == policy.StaggerSplit {
					first, gap = max(1, act.StaggerFirstNow), max(1, act.StaggerGapTicks)
				}
				if act.HasPriority {
					tx.Priority = int32(clampPrio(int(tx.Priority) + act.Priority))
				}
				kept := s.split(a, tx, n, first, gap)
				keep = append(keep, kept...)
			case policy.Drop:
				tx.Status = TxDropped
				tx.Overdue = true
				if s.log != nil {
					s.emit(LogEntry{Kind: EvDrop, Agent: a.idx, Counterparty: tx.Receiver, Tx: id, Amount: tx.Remaining})
				}
			case policy.Reprioritize:
				if act.HasPriority {
					tx.Priority = int32(clampPrio(act.Priority))
					tx.RTGSPrio = tx.Priority
				}
				keep = append(keep, id)
			default: // Hold, WithdrawFromRtgs and anything else keep it queued
				keep = append(keep, id)
			}
		}
		// keep is scratch space shared by all agents: copy it back.
		a.q1 = append(a.q1[:0], keep...)
		s.keep = keep
	}
}

// split replaces tx by n children (amount/n, remainder to the last) and
// charges split friction. The first `now` children go to pending at once;
// the others are released one every gap ticks. It returns the children kept
// in Q1.
func (s *Sim) split(a *agent, tx *Tx, n, now, gap int) []int32 {
	parent := tx.ID
	amount := tx.Remaining
	part := amount / int64(n)
	fr := s.cfg.Costs.SplitFrictionCost * int64(n-1)
	a.day.SplitFriction += fr
	a.total.SplitFriction += fr
	if s.log != nil {
		s.emit(LogEntry{Kind: EvSplit, Agent: a.idx, Counterparty: tx.Receiver, Tx: parent, Amount: amount, Value: int64(n)})
	}
	receiver, deadline, prio, div := tx.Receiver, int(tx.Deadline), int(tx.Priority), tx.Divisible
	arrival := tx.Arrival
	s.txs[parent].childrenLeft = int32(n)
	s.txs[parent].Remaining = 0
	var kept []int32
	for i := 0; i < n; i++ {
		amt := part
		if i == n-1 {
			amt = amount - part*int64(n-1)
		}
		id := s.newTx(a.idx, receiver, amt, deadline, prio, div, parent)
		c := &s.txs[id]
		c.Arrival = arrival
		if i < now {
			s.pending = append(s.pending, id)
		} else {
			c.releaseAt = int32(s.tick + (i-now+1)*gap)
			kept = append(kept, id)
		}
	}
	return kept
}

func clampPrio(p int) int { return min(10, max(0, p)) }

// rtgsPriority maps an action's RTGS priority onto the 0..10 scale Q2's
// priority mode sorts by: Release's priority_flag already is on it;
// ResubmitToRtgs gives a level (normal, urgent, highly urgent).
func rtgsPriority(act policy.Action) int {
	if act.Kind == policy.ResubmitToRtgs {
		switch act.Priority {
		case policy.RtgsHighlyUrgent:
			return 10
		case policy.RtgsUrgent:
			return 8
		default:
			return 5
		}
	}
	return clampPrio(act.Priority)
}

func (s *Sim) policyError(a *agent, t policy.Tree, err error) {
	s.policyErrors++
	if s.log != nil {
		s.emit(LogEntry{Kind: EvPolicyError, Agent: a.idx, Counterparty: -1, Tx: -1, Detail: t.String() + ": " + err.Error()})
	}
}

// hasStagger reports whether a's Q1 holds staggered split children, which
// follow their own release schedule.
func (s *Sim) hasStagger(a *agent) bool {
	for _, id := range a.q1 {
		if s.txs[id].releaseAt >= 0 {
			return true
		}
	}
	return false
}
