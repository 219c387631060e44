package policy

// This file is the contract between the policy package and its users (sim,
// experiment). Keep these names and signatures stable.

// Tree names one of the four decision trees of a policy document.
type Tree int

const (
	PaymentTree Tree = iota
	BankTree
	StrategicCollateralTree
	EndOfTickCollateralTree
	NumTrees
)

// Field is the index of a context field in Context.V. The set of fields is
// fixed so that evaluation is an array lookup, not a map lookup; the
// simulator fills Context.V before it evaluates a tree.
type Field int

// Context fields. Those before numTxFields describe the transaction being
// decided and are allowed only in the payment tree.
const (
	FAmount Field = iota
	FRemainingAmount
	FArrivalTick
	FDeadlineTick
	FPriority
	FTicksToDeadline
	FQueueAge
	FIsOverdue
	FIsPastDeadline
	FIsInQueue2
	FIsDivisible
	FIsSplit
	FCostDelayThisTxOneTick
	FCostOverdraftThisAmountOneTick
	FSettledAmount   // amount - remaining_amount
	FOverdueDuration // ticks since the transaction became overdue, 0 if not
	numTxFields

	// agent fields
	FBalance = numTxFields
)

const (
	FCreditLimit = FBalance + 1 + iota
	FCreditUsed
	FCreditHeadroom
	FHeadroom
	FAvailableLiquidity
	FEffectiveLiquidity
	FPostedCollateral
	FMaxCollateralCapacity
	FRemainingCollateralCapacity
	FExcessCollateral
	FCollateralHaircut
	FCollateralUtilization
	FOutgoingQueueSize
	FQueue1TotalValue
	FQueue1LiquidityGap
	FRtgsQueueSize
	FRtgsQueueValue
	FLiquidityPressure
	FReleaseBudgetRemaining
	FOpeningBalance
	FAllocatedLiquidity
	FLiquidityPool
	FIsUsingCredit                // 1 when balance < 0
	FLiquidityBuffer              // the agent's configured liquidity buffer
	FIncomingExpectedCount        // expected inflows known to the agent
	FQueue2Size                   // all transactions in Q2
	FQueue2CountForAgent          // the agent's transactions in Q2
	FQueue2NearestDeadline        // min deadline of the agent's Q2 items; 1.8446744073709552e19 (usize::MAX) if none
	FTicksToNearestQueue2Deadline // max(0, that - tick); +Inf if none
	FIsOverdraftCapped            // always 1 in the reference
	FUnsecuredCap                 // same value as credit_limit
	FAllowedOverdraftLimit        // floor(posted*(1-haircut)) + unsecured_cap
	FOverdraftHeadroom            // allowed_overdraft_limit - credit_used
	FOverdraftUtilization         // credit_used / allowed_overdraft_limit (0 if no limit)
	FRequiredCollateralForUsage   // max(0, credit_used - unsecured_cap) / (1 - haircut)

	// system fields
	FCurrentTick
	FSystemTickInDay
	FSystemTicksPerDay
	FSystemCurrentDay
	FTicksRemainingInDay
	FDayProgressFraction
	FIsEODRush
	FTotalAgents

	// cost rates, as configured (floats, not cents-scaled)
	FCostOverdraftBpsPerTick
	FCostDelayPerTickPerCent
	FCostCollateralBpsPerTick
	FCostLiquidityBpsPerTick
	FCostDeadlinePenalty
	FCostEODPenalty
	FCostSplitFriction
	FCostOverdueDelayMultiplier

	NumFields
)

// Context is what a tree sees when it is evaluated. The simulator owns one
// Context per agent and refills V before each evaluation; State holds the
// agent's bank_state_* registers, indexed by Policy.StateSlot.
type Context struct {
	V     [NumFields]float64
	State []float64
}

// ActionKind is the kind of a leaf action.
type ActionKind int

const (
	// payment tree
	Release ActionKind = iota
	ReleaseWithCredit
	Split
	PaceAndRelease
	StaggerSplit
	Hold
	Drop
	Reprioritize
	WithdrawFromRtgs
	ResubmitToRtgs
	// bank tree
	SetReleaseBudget
	SetState
	AddState
	NoAction
	// collateral trees
	PostCollateral
	WithdrawCollateral
	HoldCollateral
	numActionKinds
)

// Action is the evaluated result of a tree: the leaf's kind with its
// parameters already computed against the context. Fields not used by a
// kind are zero.
type Action struct {
	Kind   ActionKind
	NodeID string
	Reason string

	// Split, StaggerSplit, PaceAndRelease
	NumSplits       int
	StaggerFirstNow int
	StaggerGapTicks int

	// Reprioritize (new_priority, clamped to 0..255), ResubmitToRtgs
	// (rtgs_priority as RtgsNormal/RtgsUrgent/RtgsHighlyUrgent), Release
	// priority_flag (HIGH 10, MEDIUM 5, LOW 1), StaggerSplit
	// priority_boost_children (clamped to 0..255)
	Priority    int
	HasPriority bool

	// SetReleaseBudget; values are truncated toward zero. FocusCpty is
	// shared with the compiled policy: read it, never modify it.
	MaxValueToRelease float64
	MaxPerCpty        float64 // meaningful only when HasMaxPerCpty
	HasMaxPerCpty     bool
	FocusCpty         []string // nil = every counterparty

	// SetState / AddState
	StateSlot  int
	StateValue float64

	// PostCollateral / WithdrawCollateral: Amount > 0, truncated toward
	// zero (a computed amount <= 0 yields HoldCollateral instead);
	// AutoWithdrawAfterTicks 0 = never.
	Amount                 float64
	AutoWithdrawAfterTicks int

	// Release / ReleaseWithCredit timed_for_tick
	TargetTick    int
	HasTargetTick bool
}

// The functions below are implemented in the package's other files:
//
//   func Parse(data []byte) (*Policy, error)         // decode + validate + compile
//   func ParseWith(data []byte, opt Options) (*Policy, error)
//   func Builtin(name string) (*Policy, error)        // "Fifo", "Deadline", "LiquidityAware"
//   func (p *Policy) Has(t Tree) bool
//   func (p *Policy) Decide(t Tree, ctx *Context) (Action, error)  // never panics
//   func (p *Policy) Param(name string) (float64, bool)
//   func (p *Policy) WithParams(map[string]float64) (*Policy, error) // copy with parameters set/overridden
//   func (p *Policy) StateKeys() []string             // bank_state_* names, by slot
//   func (p *Policy) JSON() []byte                    // canonical JSON of the document
//   func FieldByName(name string) (Field, bool)
//   func FieldName(f Field) string
