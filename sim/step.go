package sim

import (
	"cmp"
	"math"
	"slices"

	"simcash/policy"
)

// Step runs one tick in SimCash's order (Orchestrator::tick).
func (s *Sim) Step() {
	t := s.tick
	tid := t % s.tpd
	if tid == 0 && t > 0 {
		s.startDay()
	}
	s.runEvents()
	s.arrivals()
	s.collateralTrees(policy.StrategicCollateralTree)
	s.bankTrees()
	s.collateralTimers()
	s.escalatePriorities()
	s.decide()
	s.decideQ2()
	s.settlePending()
	s.sortQ2()
	s.processQueue(s.cfg.DeferredCrediting)
	if s.cfg.LSM.EnableBilateral || s.cfg.LSM.EnableCycles {
		s.runLSM()
	}
	s.collateralTrees(policy.EndOfTickCollateralTree)
	if s.cfg.DeferredCrediting {
		for _, a := range s.agents {
			if a.credit != 0 {
				a.balance += a.credit
				a.credit = 0
			}
		}
	}
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

// startDay resets the daily cost accumulators and allocates pool liquidity
// with the policy's fraction (allocate_daily_liquidity).
func (s *Sim) startDay() {
	for _, a := range s.agents {
		a.days = append(a.days, a.day)
		a.day = Costs{}
		if a.cfg.LiquidityPool > 0 {
			a.allocated = int64(math.Floor(float64(a.cfg.LiquidityPool) * a.fraction))
			a.balance += a.allocated
		}
	}
}

// endOfDay charges end-of-day penalties for payments past their deadline,
// resets state registers and daily outflows and returns pool liquidity.
func (s *Sim) endOfDay() {
	t := int32(s.tick)
	eod := &s.cfg.Costs.EODPenaltyPerTransaction
	for _, a := range s.agents {
		for _, id := range a.q1 {
			if tx := &s.txs[id]; tx.Deadline < t {
				s.chargeEOD(a, tx, eod)
			}
		}
		for _, id := range s.q2 {
			if tx := &s.txs[id]; tx.Sender == a.idx && tx.Deadline < t {
				s.chargeEOD(a, tx, eod)
			}
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
	p := eod.Of(tx.Remaining)
	a.day.EODPenalty += p
	a.total.EODPenalty += p
	if s.log != nil {
		s.emit(LogEntry{Kind: EvEODPenalty, Agent: a.idx, Counterparty: tx.Receiver, Tx: tx.ID, Amount: p})
	}
}

// newTx records a payment (not yet queued anywhere).
func (s *Sim) newTx(sender, receiver int32, amount int64, deadline int, priority int, divisible bool, parent int32) int32 {
	id := int32(len(s.txs))
	s.txs = append(s.txs, Tx{
		ID: id, Sender: sender, Receiver: receiver, Amount: amount, Remaining: amount,
		Arrival: int32(s.tick), Deadline: int32(deadline), Priority: int32(priority), origPriority: int32(priority),
		Divisible: divisible, Parent: parent, SettledTick: -1, declared: rtgsNone, rtgs: rtgsNone,
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
		if a.bands != nil {
			s.bandArrivals(a, runEnd, day)
			continue
		}
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
			amount := s.drawAmount(&a.arr.Amount, a.logNormal)
			cp := s.pickCounterparty(a.candidates, a.weights, a.weightSum)
			dl := s.arrivalDeadline(a.dlMin, a.dlMax, runEnd, day)
			prio := a.arr.Priority
			if a.arr.PriorityDist != nil {
				prio = s.samplePriority(a.arr.PriorityDist)
			}
			// SimCash keeps its default priority 5 for a drawn 0.
			if prio <= 0 {
				prio = 5
			}
			id := s.newTx(a.idx, cp, amount, dl, min(prio, 10), a.arr.Divisible, -1)
			s.enqueueArrival(id)
		}
	}
}

// drawAmount draws a payment amount; ln holds a LogNormal's precomputed
// mu and sigma.
func (s *Sim) drawAmount(d *Distribution, ln [2]float64) int64 {
	if d.Kind == LogNormal {
		return s.rng.logNormal(ln[0], ln[1])
	}
	return s.rng.Sample(d)
}

// pickCounterparty draws a receiver among candidates (the other agents in
// config order): by weight (absent weights count 1.0), or uniformly when
// weights is nil.
func (s *Sim) pickCounterparty(candidates []int32, weights []float64, sum float64) int32 {
	if weights == nil {
		return candidates[s.rng.Range(0, int64(len(candidates)))]
	}
	target := s.rng.Float() * sum
	for i, w := range weights {
		target -= w
		if target <= 0 {
			return candidates[i]
		}
	}
	return candidates[len(candidates)-1]
}

// arrivalDeadline draws a deadline offset in [lo, hi] and caps it at the
// end of the run and, with deadline_cap_at_eod, at the end of the day.
func (s *Sim) arrivalDeadline(lo, hi int64, runEnd, day int) int {
	dl := s.tick + int(s.rng.Range(lo, hi+1))
	dl = min(dl, runEnd)
	if s.cfg.DeadlineCapAtEOD {
		dl = min(dl, (day+1)*s.tpd)
	}
	return max(dl, s.tick+1)
}

// escalatePriorities raises queued payments' priority as deadlines near
// (apply_priority_escalation): boost = round(max_boost x progress) on the
// original priority, never lowering the current one. SimCash visits every
// unsettled payment; only queued ones can be decided or settled again, so
// those are the ones visited here.
func (s *Sim) escalatePriorities() {
	pe := &s.cfg.PriorityEscalation
	if !pe.Enabled {
		return
	}
	esc := func(tx *Tx) {
		ttd := max(int(tx.Deadline)-s.tick, 0)
		if ttd > pe.StartEscalatingAtTicks {
			return
		}
		progress := 1.0
		if pe.StartEscalatingAtTicks > 0 {
			progress = 1 - float64(ttd)/float64(pe.StartEscalatingAtTicks)
		}
		boost := int32(roundHalfAway(float64(pe.MaxBoost) * progress))
		if p := min(10, tx.origPriority+boost); p > tx.Priority {
			tx.Priority = p
		}
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

// markOverdue flags a queued payment past its deadline and reports
// whether it was newly marked; the deadline penalty is charged when costs
// accrue.
func (s *Sim) markOverdue(tx *Tx) bool {
	if tx.Overdue || int32(s.tick) <= tx.Deadline {
		return false
	}
	tx.Overdue = true
	tx.overdueSince = int32(s.tick)
	return true
}

// decide evaluates each agent's payment tree over its Q1 against one
// snapshot, then applies the decisions in Q1 order (policy evaluation).
func (s *Sim) decide() {
	if s.cfg.Queue1Ordering == "priority_deadline" {
		for _, a := range s.agents {
			if len(a.q1) > 1 {
				slices.SortStableFunc(a.q1, func(x, y int32) int {
					tx, ty := &s.txs[x], &s.txs[y]
					if c := cmp.Compare(ty.Priority, tx.Priority); c != 0 {
						return c
					}
					return cmp.Compare(tx.Deadline, ty.Deadline)
				})
			}
		}
	}
	statsDone := false
	for _, a := range s.agents {
		if len(a.q1) == 0 {
			continue
		}
		if a.releaseAll && !a.budgetOn && s.log == nil {
			// Every decision is Release: skip the snapshot and the tree.
			for _, id := range a.q1 {
				s.submit(&s.txs[id])
			}
			a.q1 = a.q1[:0]
			continue
		}
		if !statsDone {
			s.q2Stats()
			statsDone = true
		}
		s.fillAgentContext(a)
		s.decisions = s.decisions[:0]
		for _, id := range a.q1 {
			tx := &s.txs[id]
			s.fillTxContext(a, tx)
			act, err := a.pol.Decide(policy.PaymentTree, &a.ctx)
			if err != nil {
				s.policyError(a, policy.PaymentTree, err)
				act = policy.Action{Kind: policy.Hold, Reason: "policy_error"}
			}
			s.decisions = append(s.decisions, act)
		}
		// Decisions are applied to a copy of the queue they were made on;
		// a.q1 changes as they are applied (removals, stagger children).
		queue := append(s.keep[:0], a.q1...)
		s.keep = queue
		for i, id := range queue {
			s.apply(a, &s.txs[id], s.decisions[i])
		}
	}
}

// apply carries out one payment decision (process decisions in SimCash).
func (s *Sim) apply(a *agent, tx *Tx, act policy.Action) {
	id := tx.ID
	if s.log != nil {
		s.emit(LogEntry{Kind: EvDecision, Agent: a.idx, Counterparty: tx.Receiver, Tx: id, Amount: tx.Remaining, Action: act.Kind, Node: act.NodeID})
	}
	switch act.Kind {
	case policy.Release, policy.ReleaseWithCredit:
		if act.HasPriority {
			tx.Priority = int32(min(act.Priority, 10))
		}
		if act.HasTargetTick && act.TargetTick > s.tick {
			return // timed for a later tick: stays in Q1
		}
		if !s.budgetAllows(a, tx) {
			return
		}
		a.removeQ1(id)
		s.submit(tx)
	case policy.Split, policy.PaceAndRelease:
		if act.NumSplits < 2 {
			s.policyError(a, policy.PaymentTree, errSplitTooFew)
			return
		}
		a.removeQ1(id)
		s.split(a, tx, act.NumSplits, act.NumSplits, int(tx.Priority), true)
	case policy.StaggerSplit:
		if act.NumSplits < 2 || act.StaggerFirstNow > act.NumSplits {
			s.policyError(a, policy.PaymentTree, errSplitTooFew)
			return
		}
		a.removeQ1(id)
		boost := 0
		if act.HasPriority {
			boost = act.Priority
		}
		s.split(a, tx, act.NumSplits, act.StaggerFirstNow, min(int(tx.Priority)+boost, 10), false)
	case policy.Drop:
		a.removeQ1(id)
		tx.Status = TxDropped
		s.markOverdueAt(tx)
		if s.log != nil {
			s.emit(LogEntry{Kind: EvDrop, Agent: a.idx, Counterparty: tx.Receiver, Tx: id, Amount: tx.Remaining})
		}
	case policy.Reprioritize:
		if act.HasPriority {
			tx.Priority = int32(min(max(act.Priority, 0), 10))
		}
	case policy.ResubmitToRtgs:
		// Not in Q2: SimCash records the declared priority and queues the
		// payment in Q1 once more.
		tx.declared = rtgsLevel(act.Priority)
		a.q1 = append(a.q1, id)
	default: // Hold; WithdrawFromRtgs of a payment not in Q2 fails into a hold
	}
}

// markOverdueAt marks a payment overdue as of now whatever its deadline
// (a dropped payment).
func (s *Sim) markOverdueAt(tx *Tx) {
	if !tx.Overdue {
		tx.Overdue = true
		tx.overdueSince = int32(s.tick)
	}
}

// submit sends tx to RTGS: it is tried at settlement with its declared
// RTGS priority (Normal by default).
func (s *Sim) submit(tx *Tx) {
	tx.rtgs = tx.declared
	if tx.rtgs == rtgsNone {
		tx.rtgs = rtgsNormal
	}
	tx.rtgsTick = int32(s.tick)
	s.pending = append(s.pending, tx.ID)
}

func rtgsLevel(p int) int8 {
	switch p {
	case policy.RtgsHighlyUrgent:
		return rtgsHighlyUrgent
	case policy.RtgsUrgent:
		return rtgsUrgent
	default:
		return rtgsNormal
	}
}

// removeQ1 removes the first occurrence of id from the agent's Q1.
func (a *agent) removeQ1(id int32) {
	if i := slices.Index(a.q1, id); i >= 0 {
		a.q1 = slices.Delete(a.q1, i, i+1)
	}
}

// split replaces tx by n children: amount/n each, the remainder to the
// last, the parent's arrival and deadline, priority prio. The first `now`
// go to RTGS at once; the others wait in Q1 for the next decisions.
// Children of a plain split carry the parent's declared RTGS priority;
// staggered ones (rtgsTagged false) carry none, as in SimCash.
func (s *Sim) split(a *agent, tx *Tx, n, now, prio int, rtgsTagged bool) {
	parent := tx.ID
	amount := tx.Amount
	if amount < int64(n) {
		// Children of zero would be invalid payments (SimCash panics):
		// split into as many one-cent children as there are cents.
		n = int(max(amount, 1))
		now = min(now, n)
	}
	part := amount / int64(n)
	if fr := s.cfg.Costs.SplitFrictionCost * int64(n-1); fr > 0 {
		a.day.SplitFriction += fr
		a.total.SplitFriction += fr
	}
	if s.log != nil {
		s.emit(LogEntry{Kind: EvSplit, Agent: a.idx, Counterparty: tx.Receiver, Tx: parent, Amount: amount, Value: int64(n)})
	}
	receiver, deadline, arrival, declared := tx.Receiver, int(tx.Deadline), tx.Arrival, tx.declared
	pt := &s.txs[parent]
	pt.childrenLeft, pt.children, pt.firstChild, pt.rtgsLeft = int32(n), int32(n), int32(len(s.txs)), amount
	for i := 0; i < n; i++ {
		amt := part
		if i == n-1 {
			amt = amount - part*int64(n-1)
		}
		id := s.newTx(a.idx, receiver, amt, deadline, prio, false, parent)
		c := &s.txs[id]
		c.Arrival = arrival
		if i < now {
			if rtgsTagged {
				c.rtgs, c.rtgsTick = declared, int32(s.tick)
				if c.rtgs == rtgsNone {
					c.rtgs = rtgsNormal
				}
			}
			s.pending = append(s.pending, id)
		} else {
			a.q1 = append(a.q1, id)
		}
	}
}

func (s *Sim) policyError(a *agent, t policy.Tree, err error) {
	s.policyErrors++
	if s.log != nil {
		s.emit(LogEntry{Kind: EvPolicyError, Agent: a.idx, Counterparty: -1, Tx: -1, Detail: t.String() + ": " + err.Error()})
	}
}

// decideQ2 evaluates the payment tree of agents whose policy can withdraw
// or resubmit for each of their payments in Q2 (Queue 2 policy evaluation);
// only those two actions act there.
func (s *Sim) decideQ2() {
	if !s.q2Actions || len(s.q2) == 0 {
		return
	}
	type q2d struct {
		a   *agent
		tx  int32
		act policy.Action
	}
	var ds []q2d
	statsDone := false
	for _, a := range s.agents {
		if !a.q2Acts || a.q2Count == 0 {
			continue
		}
		if !statsDone {
			s.q2Stats()
			statsDone = true
		}
		s.fillAgentContext(a)
		for _, id := range s.q2 {
			tx := &s.txs[id]
			if tx.Sender != a.idx {
				continue
			}
			s.fillTxContext(a, tx)
			act, err := a.pol.Decide(policy.PaymentTree, &a.ctx)
			if err != nil {
				s.policyError(a, policy.PaymentTree, err)
				continue
			}
			if act.Kind == policy.WithdrawFromRtgs || act.Kind == policy.ResubmitToRtgs {
				ds = append(ds, q2d{a, id, act})
			}
		}
	}
	for _, d := range ds {
		tx := &s.txs[d.tx]
		if !s.withdrawQ2(tx) {
			continue
		}
		if d.act.Kind == policy.ResubmitToRtgs {
			tx.declared = rtgsLevel(d.act.Priority)
			d.a.q1 = append(d.a.q1, tx.ID)
		}
	}
}

// withdrawQ2 takes tx out of Q2 (it then waits nowhere until resubmitted).
func (s *Sim) withdrawQ2(tx *Tx) bool {
	i := slices.Index(s.q2, tx.ID)
	if i < 0 {
		return false
	}
	s.q2 = slices.Delete(s.q2, i, i+1)
	tx.inQ2 = false
	tx.rtgs = rtgsNone
	a := s.agents[tx.Sender]
	a.q2Count--
	a.q2Value -= tx.Remaining
	return true
}
