package policy

// The compiled form of one tree: flat slices indexed by int32, so that
// evaluation is array lookups with no maps and no allocations.

type vop uint8

const (
	vConst vop = iota
	vField
	vState
	vAdd
	vSub
	vMul
	vDiv
	vMax
	vMin
	vCeil
	vFloor
	vRound
	vAbs
	vClamp
	vDiv0
)

// vnode is a numeric value. a, b, c index other vnodes (clamp: value, min,
// max; div0: numerator, denominator, default); args holds max/min operands.
type vnode struct {
	op      vop
	idx     int32
	k       float64
	a, b, c int32
	args    []int32
}

type cop uint8

const (
	cEq cop = iota
	cNe
	cLt
	cLe
	cGt
	cGe
	cAnd
	cOr
	cNot
)

// cnode is a boolean expression. l and r index vnodes for comparisons;
// kids index cnodes for and/or/not.
type cnode struct {
	op   cop
	l, r int32
	kids []int32
}

// tnode is a tree node: a condition (act < 0) or an action leaf.
type tnode struct {
	id      string
	cond    int32
	onTrue  int32
	onFalse int32
	act     int32
}

// Action parameter slots whose values are computed at decision time.
const (
	apNumSplits = iota
	apStaggerFirstNow
	apStaggerGapTicks
	apPriorityBoost
	apNewPriority
	apMaxValue
	apMaxPerCpty
	apStateValue
	apAmount
	apAutoWithdraw
	apTimedForTick
	numActParams
)

// anode is a compiled action leaf. num[i] indexes a vnode, or is -1 when the
// parameter is absent.
type anode struct {
	kind        ActionKind
	nodeID      string
	reason      string
	priority    int  // fixed priority from priority_flag / rtgs_priority
	hasPriority bool // priority is set by a string parameter
	focus       []string
	stateSlot   int
	num         [numActParams]int32
}

type program struct {
	tree  Tree
	nodes []tnode
	conds []cnode
	vals  []vnode
	acts  []anode
}
