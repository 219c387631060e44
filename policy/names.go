package policy

import "strings"

// fieldNames maps each Field to its JSON name, indexed by Field.
var fieldNames = [NumFields]string{
	FAmount:                         "amount",
	FRemainingAmount:                "remaining_amount",
	FArrivalTick:                    "arrival_tick",
	FDeadlineTick:                   "deadline_tick",
	FPriority:                       "priority",
	FTicksToDeadline:                "ticks_to_deadline",
	FQueueAge:                       "queue_age",
	FIsOverdue:                      "is_overdue",
	FIsPastDeadline:                 "is_past_deadline",
	FIsInQueue2:                     "is_in_queue2",
	FIsDivisible:                    "is_divisible",
	FIsSplit:                        "is_split",
	FCostDelayThisTxOneTick:         "cost_delay_this_tx_one_tick",
	FCostOverdraftThisAmountOneTick: "cost_overdraft_this_amount_one_tick",
	FSettledAmount:                  "settled_amount",
	FOverdueDuration:                "overdue_duration",

	FBalance:                      "balance",
	FCreditLimit:                  "credit_limit",
	FCreditUsed:                   "credit_used",
	FCreditHeadroom:               "credit_headroom",
	FHeadroom:                     "headroom",
	FAvailableLiquidity:           "available_liquidity",
	FEffectiveLiquidity:           "effective_liquidity",
	FPostedCollateral:             "posted_collateral",
	FMaxCollateralCapacity:        "max_collateral_capacity",
	FRemainingCollateralCapacity:  "remaining_collateral_capacity",
	FExcessCollateral:             "excess_collateral",
	FCollateralHaircut:            "collateral_haircut",
	FCollateralUtilization:        "collateral_utilization",
	FOutgoingQueueSize:            "outgoing_queue_size",
	FQueue1TotalValue:             "queue1_total_value",
	FQueue1LiquidityGap:           "queue1_liquidity_gap",
	FRtgsQueueSize:                "rtgs_queue_size",
	FRtgsQueueValue:               "rtgs_queue_value",
	FLiquidityPressure:            "liquidity_pressure",
	FReleaseBudgetRemaining:       "release_budget_remaining",
	FOpeningBalance:               "opening_balance",
	FAllocatedLiquidity:           "allocated_liquidity",
	FLiquidityPool:                "liquidity_pool",
	FIsUsingCredit:                "is_using_credit",
	FLiquidityBuffer:              "liquidity_buffer",
	FIncomingExpectedCount:        "incoming_expected_count",
	FQueue2Size:                   "queue2_size",
	FQueue2CountForAgent:          "queue2_count_for_agent",
	FQueue2NearestDeadline:        "queue2_nearest_deadline",
	FTicksToNearestQueue2Deadline: "ticks_to_nearest_queue2_deadline",
	FIsOverdraftCapped:            "is_overdraft_capped",
	FUnsecuredCap:                 "unsecured_cap",
	FAllowedOverdraftLimit:        "allowed_overdraft_limit",
	FOverdraftHeadroom:            "overdraft_headroom",
	FOverdraftUtilization:         "overdraft_utilization",
	FRequiredCollateralForUsage:   "required_collateral_for_usage",

	FCurrentTick:         "current_tick",
	FSystemTickInDay:     "system_tick_in_day",
	FSystemTicksPerDay:   "system_ticks_per_day",
	FSystemCurrentDay:    "system_current_day",
	FTicksRemainingInDay: "ticks_remaining_in_day",
	FDayProgressFraction: "day_progress_fraction",
	FIsEODRush:           "is_eod_rush",
	FTotalAgents:         "total_agents",

	FCostOverdraftBpsPerTick:    "cost_overdraft_bps_per_tick",
	FCostDelayPerTickPerCent:    "cost_delay_per_tick_per_cent",
	FCostCollateralBpsPerTick:   "cost_collateral_bps_per_tick",
	FCostLiquidityBpsPerTick:    "cost_liquidity_bps_per_tick",
	FCostDeadlinePenalty:        "cost_deadline_penalty",
	FCostEODPenalty:             "cost_eod_penalty",
	FCostSplitFriction:          "cost_split_friction",
	FCostOverdueDelayMultiplier: "cost_overdue_delay_multiplier",
}

var fieldByName = func() map[string]Field {
	m := make(map[string]Field, NumFields)
	for f, n := range fieldNames {
		if n != "" {
			m[n] = Field(f)
		}
	}
	return m
}()

// StatePrefix starts the name of every state register field.
const StatePrefix = "bank_state_"

// MaxStateKeys bounds the registers one policy may use, as in the reference.
const MaxStateKeys = 10

// FieldByName returns the Field with the given JSON name. State registers
// (bank_state_*) are not Fields: they live in Context.State.
func FieldByName(name string) (Field, bool) {
	f, ok := fieldByName[name]
	return f, ok
}

// FieldName returns the JSON name of f, or "" if f is out of range.
func FieldName(f Field) string {
	if f < 0 || f >= NumFields {
		return ""
	}
	return fieldNames[f]
}

// FieldNames returns every known field name in Field order.
func FieldNames() []string {
	out := make([]string, 0, NumFields)
	for _, n := range fieldNames {
		out = append(out, n)
	}
	return out
}

// IsTxField reports whether f describes the transaction being decided, and
// so is available only in the payment tree.
func IsTxField(f Field) bool { return f >= 0 && f < numTxFields }

// IsStateKey reports whether name is a state register name.
func IsStateKey(name string) bool {
	return strings.HasPrefix(name, StatePrefix) && len(name) > len(StatePrefix)
}

var treeNames = [NumTrees]string{
	PaymentTree:             "payment_tree",
	BankTree:                "bank_tree",
	StrategicCollateralTree: "strategic_collateral_tree",
	EndOfTickCollateralTree: "end_of_tick_collateral_tree",
}

// String returns the tree's JSON key, e.g. "payment_tree".
func (t Tree) String() string {
	if t < 0 || t >= NumTrees {
		return "unknown_tree"
	}
	return treeNames[t]
}

// TreeByName returns the tree whose JSON key is name.
func TreeByName(name string) (Tree, bool) {
	for t, n := range treeNames {
		if n == name {
			return Tree(t), true
		}
	}
	return 0, false
}

var actionNames = [numActionKinds]string{
	Release:            "Release",
	ReleaseWithCredit:  "ReleaseWithCredit",
	Split:              "Split",
	PaceAndRelease:     "PaceAndRelease",
	StaggerSplit:       "StaggerSplit",
	Hold:               "Hold",
	Drop:               "Drop",
	Reprioritize:       "Reprioritize",
	WithdrawFromRtgs:   "WithdrawFromRtgs",
	ResubmitToRtgs:     "ResubmitToRtgs",
	SetReleaseBudget:   "SetReleaseBudget",
	SetState:           "SetState",
	AddState:           "AddState",
	NoAction:           "NoAction",
	PostCollateral:     "PostCollateral",
	WithdrawCollateral: "WithdrawCollateral",
	HoldCollateral:     "HoldCollateral",
}

// String returns the action's JSON name, e.g. "Release".
func (k ActionKind) String() string {
	if k < 0 || k >= numActionKinds {
		return "UnknownAction"
	}
	return actionNames[k]
}

// ActionKindByName returns the action kind with the given JSON name.
func ActionKindByName(name string) (ActionKind, bool) {
	for k, n := range actionNames {
		if n == name {
			return ActionKind(k), true
		}
	}
	return 0, false
}

// ActionsFor returns the action kinds legal in tree t.
func ActionsFor(t Tree) []ActionKind {
	switch t {
	case PaymentTree:
		return []ActionKind{Release, ReleaseWithCredit, Split, PaceAndRelease, StaggerSplit, Hold, Drop, Reprioritize, WithdrawFromRtgs, ResubmitToRtgs}
	case BankTree:
		return []ActionKind{SetReleaseBudget, SetState, AddState, NoAction}
	case StrategicCollateralTree, EndOfTickCollateralTree:
		return []ActionKind{PostCollateral, WithdrawCollateral, HoldCollateral}
	}
	return nil
}

// LegalIn reports whether k may appear in tree t.
func (k ActionKind) LegalIn(t Tree) bool {
	for _, a := range ActionsFor(t) {
		if a == k {
			return true
		}
	}
	return false
}

// ActionParams returns the parameter names action k takes: required ones,
// then optional ones ("reason" is optional everywhere). Spellings accepted
// only for compatibility with reference files, which have no effect, are
// left out.
func ActionParams(k ActionKind) (required, optional []string) {
	if k < 0 || k >= numActionKinds {
		return nil, nil
	}
	for _, sp := range actionParams[k] {
		switch {
		case sp.ignored:
		case sp.required:
			required = append(required, sp.name)
		default:
			optional = append(optional, sp.name)
		}
	}
	return required, append(optional, "reason")
}
