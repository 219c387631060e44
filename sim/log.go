package sim

import "simcash/policy"

// LogKind names what happened in an engine event.
type LogKind uint8

const (
	EvArrival LogKind = iota
	EvDecision
	EvSettle
	EvQueued
	EvLSMBilateral
	EvLSMCycle
	EvLSMSettle
	EvOverdue
	EvDrop
	EvSplit
	EvCost
	EvEODPenalty
	EvDirectTransfer
	EvCreditChange
	EvCollateral
	EvBankAction
	EvPolicyError
)

var eventNames = [...]string{
	EvArrival: "arrival", EvDecision: "policy_decision", EvSettle: "settlement", EvQueued: "queued_rtgs",
	EvLSMBilateral: "lsm_bilateral_offset", EvLSMCycle: "lsm_cycle_settlement", EvLSMSettle: "lsm_settlement",
	EvOverdue: "transaction_overdue", EvDrop: "transaction_dropped", EvSplit: "transaction_split",
	EvCost: "cost_accrual", EvEODPenalty: "eod_penalty", EvDirectTransfer: "direct_transfer",
	EvCreditChange: "credit_limit_change", EvCollateral: "collateral", EvBankAction: "bank_action",
	EvPolicyError: "policy_error",
}

func (k LogKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one entry of the engine's event log. It is a flat value so that
// logging allocates nothing beyond the log itself. Agent and Counterparty
// are agent indices (Sim.AgentID names them), -1 when not applicable; Tx is
// a transaction id or -1.
//   - arrival: Amount = amount, Value = deadline tick
//   - policy_decision: Action, Node, Amount = remaining
//   - settlement, lsm_settlement, queued_rtgs, transaction_dropped: Amount
//   - lsm_bilateral_offset: Amount = offset, Value = net flow Agent->Counterparty
//   - lsm_cycle_settlement: Amount = total value, Value = cycle length
//   - transaction_overdue: Amount = deadline penalty charged
//   - transaction_split: Amount = amount split, Value = parts
//   - cost_accrual: Costs = this tick's costs of Agent
//   - eod_penalty: Amount = penalty
//   - collateral / bank_action: Action, Node, Amount
type LogEntry struct {
	Tick         int32
	Kind         LogKind
	Agent        int32
	Counterparty int32
	Tx           int32
	Amount       int64
	Value        int64
	Action       policy.ActionKind
	Node         string
	Detail       string
	Costs        *Costs
}
