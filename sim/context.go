package sim

import (
	"math"

	"simcash/policy"
)

// fillAgentContext writes the agent and system fields of the policy context
// (the snapshot every decision of this tick sees), as SimCash's EvalContext
// computes them.
func (s *Sim) fillAgentContext(a *agent) {
	v := &a.ctx.V
	used := max(0, -a.balance)
	allowed := a.allowedOverdraft()
	avail := a.available()
	var q1Value int64
	for _, id := range a.q1 {
		q1Value += s.txs[id].Remaining
	}
	creditHeadroom := a.unsecuredCap - used
	maxColl := a.maxCollateral()
	v[policy.FBalance] = float64(a.balance)
	v[policy.FCreditLimit] = float64(a.unsecuredCap)
	v[policy.FUnsecuredCap] = float64(a.unsecuredCap)
	v[policy.FCreditUsed] = float64(used)
	v[policy.FCreditHeadroom] = float64(creditHeadroom)
	v[policy.FEffectiveLiquidity] = float64(a.balance + creditHeadroom)
	v[policy.FAvailableLiquidity] = float64(avail)
	v[policy.FHeadroom] = float64(avail - q1Value)
	v[policy.FIsUsingCredit] = b2f(a.balance < 0)
	v[policy.FLiquidityBuffer] = 0
	v[policy.FOutgoingQueueSize] = float64(len(a.q1))
	v[policy.FIncomingExpectedCount] = 0 // SimCash never fills incoming_expected
	if total := a.balance + a.unsecuredCap + a.posted; total == 0 {
		v[policy.FLiquidityPressure] = 1
	} else {
		v[policy.FLiquidityPressure] = 1 - float64(max(a.balance, 0))/float64(total)
	}
	v[policy.FIsOverdraftCapped] = 1
	v[policy.FPostedCollateral] = float64(a.posted)
	v[policy.FMaxCollateralCapacity] = float64(maxColl)
	v[policy.FRemainingCollateralCapacity] = float64(maxColl - a.posted)
	if maxColl > 0 {
		v[policy.FCollateralUtilization] = float64(a.posted) / float64(maxColl)
	} else {
		v[policy.FCollateralUtilization] = 0
	}
	v[policy.FAllowedOverdraftLimit] = float64(allowed)
	v[policy.FOverdraftHeadroom] = float64(allowed - used)
	v[policy.FCollateralHaircut] = a.haircut
	required := 0.0
	if a.haircut < 1 {
		required = math.Ceil(float64(used-min(a.unsecuredCap, used)) / max(1-a.haircut, 0))
	}
	v[policy.FRequiredCollateralForUsage] = required
	v[policy.FExcessCollateral] = max(float64(a.posted)-required, 0)
	if allowed > 0 {
		v[policy.FOverdraftUtilization] = float64(used) / float64(allowed)
	} else {
		v[policy.FOverdraftUtilization] = 0
	}
	v[policy.FQueue1TotalValue] = float64(q1Value)
	v[policy.FQueue1LiquidityGap] = float64(max(0, q1Value-avail))
	v[policy.FRtgsQueueSize] = float64(len(s.q2))
	v[policy.FRtgsQueueValue] = float64(s.q2Value())
	v[policy.FQueue2Size] = float64(len(s.q2))
	v[policy.FQueue2CountForAgent] = float64(a.q2Count)
	if a.q2Count > 0 {
		v[policy.FQueue2NearestDeadline] = float64(a.nearestQ2)
		v[policy.FTicksToNearestQueue2Deadline] = float64(max(0, int(a.nearestQ2)-s.tick))
	} else {
		v[policy.FQueue2NearestDeadline] = policy.NoQueue2Deadline
		v[policy.FTicksToNearestQueue2Deadline] = math.Inf(1)
	}
	// Fields SimCash does not have (a policy using them fails there).
	if a.budgetOn {
		v[policy.FReleaseBudgetRemaining] = float64(a.budgetLeft)
	} else {
		v[policy.FReleaseBudgetRemaining] = float64(avail)
	}
	v[policy.FOpeningBalance] = float64(a.cfg.OpeningBalance)
	v[policy.FAllocatedLiquidity] = float64(a.allocated)
	v[policy.FLiquidityPool] = float64(a.cfg.LiquidityPool)

	tid := s.tick % s.tpd
	v[policy.FCurrentTick] = float64(s.tick)
	v[policy.FSystemTickInDay] = float64(tid)
	v[policy.FSystemTicksPerDay] = float64(s.tpd)
	v[policy.FSystemCurrentDay] = float64(s.tick / s.tpd)
	v[policy.FTicksRemainingInDay] = float64(s.tpd - 1 - tid)
	dp := float64(tid) / float64(s.tpd)
	v[policy.FDayProgressFraction] = dp
	v[policy.FIsEODRush] = b2f(dp >= s.eodRush)
	v[policy.FTotalAgents] = float64(len(s.agents))

	c := &s.cfg.Costs
	v[policy.FCostOverdraftBpsPerTick] = c.OverdraftBpsPerTick
	v[policy.FCostDelayPerTickPerCent] = c.DelayCostPerTickPerCent
	v[policy.FCostCollateralBpsPerTick] = c.CollateralCostPerTickBps
	v[policy.FCostLiquidityBpsPerTick] = c.LiquidityCostPerTickBps
	v[policy.FCostSplitFriction] = float64(c.SplitFrictionCost)
	v[policy.FCostOverdueDelayMultiplier] = c.OverdueDelayMultiplier
	a.ctx.Derive()
}

// q2Value is the value queued in Q2.
func (s *Sim) q2Value() int64 {
	var v int64
	for _, a := range s.agents {
		v += a.q2Value
	}
	return v
}

// q2Stats finds, per agent, the nearest deadline of its own queued
// payments (one pass over Q2).
func (s *Sim) q2Stats() {
	for _, a := range s.agents {
		a.nearestQ2 = math.MaxInt32
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if a := s.agents[tx.Sender]; tx.Deadline < a.nearestQ2 {
			a.nearestQ2 = tx.Deadline
		}
	}
}

// fillTxContext writes the transaction fields for tx.
func (s *Sim) fillTxContext(a *agent, tx *Tx) {
	v := &a.ctx.V
	v[policy.FAmount] = float64(tx.Amount)
	v[policy.FRemainingAmount] = float64(tx.Remaining)
	v[policy.FArrivalTick] = float64(tx.Arrival)
	v[policy.FDeadlineTick] = float64(tx.Deadline)
	v[policy.FPriority] = float64(tx.Priority)
	v[policy.FTicksToDeadline] = float64(int(tx.Deadline) - s.tick)
	v[policy.FQueueAge] = float64(max(0, s.tick-int(tx.Arrival)))
	v[policy.FIsOverdue] = b2f(tx.Overdue)
	v[policy.FIsPastDeadline] = b2f(s.tick > int(tx.Deadline))
	v[policy.FIsInQueue2] = b2f(tx.rtgs != rtgsNone)
	v[policy.FIsDivisible] = b2f(tx.Divisible)
	v[policy.FIsSplit] = b2f(tx.Parent >= 0)
	v[policy.FSettledAmount] = float64(tx.Amount - tx.Remaining)
	if tx.Overdue {
		v[policy.FOverdueDuration] = float64(max(0, s.tick-int(tx.overdueSince)))
	} else {
		v[policy.FOverdueDuration] = 0
	}
	c := &s.cfg.Costs
	v[policy.FCostDelayThisTxOneTick] = float64(tx.Remaining) * c.DelayCostPerTickPerCent
	v[policy.FCostOverdraftThisAmountOneTick] = c.OverdraftBpsPerTick / 10000 * float64(tx.Remaining)
	v[policy.FCostDeadlinePenalty] = float64(c.DeadlinePenalty.Of(tx.Amount))
	v[policy.FCostEODPenalty] = float64(c.EODPenaltyPerTransaction.Of(tx.Remaining))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collateralTrees runs tree t (strategic or end-of-tick collateral) for
// every agent that has it, in id order.
func (s *Sim) collateralTrees(t policy.Tree) {
	if !s.hasTree[t] {
		return
	}
	statsDone := false
	for _, a := range s.agents {
		if !a.pol.Has(t) {
			continue
		}
		if !statsDone {
			s.q2Stats()
			statsDone = true
		}
		s.fillAgentContext(a)
		s.fillDummyTxContext(a)
		s.runCollateralTree(a, t)
	}
}

// bankTrees runs every agent's bank tree (release budgets, state
// registers); an agent without one, or whose tree says NoAction, has no
// budget this tick.
func (s *Sim) bankTrees() {
	statsDone := false
	for _, a := range s.agents {
		if !a.pol.Has(policy.BankTree) {
			a.budgetOn = false
			continue
		}
		if !statsDone {
			s.q2Stats()
			statsDone = true
		}
		s.fillAgentContext(a)
		s.fillDummyTxContext(a)
		s.runBankTree(a)
	}
}

// fillDummyTxContext gives the tree-level evaluations SimCash's placeholder
// payment: 1 cent, arriving now, due next tick, priority 5.
func (s *Sim) fillDummyTxContext(a *agent) {
	tx := Tx{Amount: 1, Remaining: 1, Arrival: int32(s.tick), Deadline: int32(s.tick + 1), Priority: 5, Parent: -1}
	s.fillTxContext(a, &tx)
}

func (s *Sim) runBankTree(a *agent) {
	act, err := a.pol.Decide(policy.BankTree, &a.ctx)
	if err != nil {
		s.policyError(a, policy.BankTree, err)
		return
	}
	switch act.Kind {
	case policy.SetReleaseBudget:
		a.budgetOn = true
		a.budgetLeft = int64(act.MaxValueToRelease)
		a.perCptyOn = act.HasMaxPerCpty
		a.perCpty = int64(act.MaxPerCpty)
		if len(a.cptyUsed) != len(s.agents) {
			a.cptyUsed = make([]int64, len(s.agents))
		}
		clear(a.cptyUsed)
		a.focus = nil
		if len(act.FocusCpty) > 0 {
			a.focus = make([]bool, len(s.agents))
			for _, id := range act.FocusCpty {
				if j, ok := s.byID[id]; ok {
					a.focus[j] = true
				}
			}
		}
	case policy.SetState:
		// The budget of an earlier tick stays in force (SimCash resets it
		// only on NoAction).
		if act.StateSlot >= 0 && act.StateSlot < len(a.ctx.State) {
			a.ctx.State[act.StateSlot] = act.StateValue
		}
	case policy.AddState:
		if act.StateSlot >= 0 && act.StateSlot < len(a.ctx.State) {
			a.ctx.State[act.StateSlot] += act.StateValue
		}
	default:
		a.budgetOn = false
	}
	if s.log != nil && act.Kind != policy.NoAction {
		s.emit(LogEntry{Kind: EvBankAction, Agent: a.idx, Counterparty: -1, Tx: -1, Action: act.Kind, Node: act.NodeID, Amount: int64(act.MaxValueToRelease)})
	}
}

// maxCollateral is the agent's collateral capacity.
func (a *agent) maxCollateral() int64 {
	if a.maxColl < 0 {
		return a.unsecuredCap * 10
	}
	return a.maxColl
}

func (s *Sim) runCollateralTree(a *agent, t policy.Tree) {
	act, err := a.pol.Decide(t, &a.ctx)
	if err != nil {
		s.policyError(a, t, err)
		return
	}
	switch act.Kind {
	case policy.PostCollateral:
		amt := int64(act.Amount)
		if amt <= 0 {
			return
		}
		// SimCash fails the whole run when a post exceeds the remaining
		// capacity; we post what the capacity allows.
		amt = min(amt, max(0, a.maxCollateral()-a.posted))
		if amt <= 0 {
			return
		}
		a.posted += amt
		if act.AutoWithdrawAfterTicks > 0 {
			a.timers = append(a.timers, collateralTimer{at: s.tick + act.AutoWithdrawAfterTicks, amount: amt})
		}
		s.logCollateral(a, act, amt)
	case policy.WithdrawCollateral:
		amt := min(int64(act.Amount), a.posted)
		if amt <= 0 {
			return
		}
		a.posted -= amt
		s.logCollateral(a, act, -amt)
	}
}

// maxWithdrawable is the collateral that can go while the remaining
// collateral still covers the credit in use plus buffer beyond the
// unsecured cap (max_withdrawable_collateral).
func (a *agent) maxWithdrawable(buffer int64) int64 {
	keep := max(1-a.haircut, 0)
	if keep <= 0 {
		return a.posted
	}
	target := max(0, -a.balance) + buffer
	need := target - min(a.unsecuredCap, target)
	req := int64(math.Ceil(float64(need) / keep))
	return max(0, a.posted-req)
}

// collateralTimers withdraws collateral whose auto-withdraw tick has come,
// at most what keeps the credit in use covered with a 100-cent buffer;
// what cannot go is dropped.
func (s *Sim) collateralTimers() {
	for _, a := range s.agents {
		if len(a.timers) == 0 {
			continue
		}
		keep := a.timers[:0]
		for _, t := range a.timers {
			if t.at != s.tick {
				if t.at > s.tick {
					keep = append(keep, t)
				}
				continue
			}
			if t.amount <= 0 {
				continue
			}
			amt := min(t.amount, a.maxWithdrawable(100), a.posted)
			if amt > 0 {
				a.posted -= amt
				s.logCollateral(a, policy.Action{Kind: policy.WithdrawCollateral, NodeID: "auto_withdraw"}, -amt)
			}
		}
		a.timers = keep
	}
}

func (s *Sim) logCollateral(a *agent, act policy.Action, delta int64) {
	if s.log != nil {
		s.emit(LogEntry{Kind: EvCollateral, Agent: a.idx, Counterparty: -1, Tx: -1, Action: act.Kind, Node: act.NodeID, Amount: delta, Value: a.posted})
	}
}
