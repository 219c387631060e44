package policy

import (
	"errors"
	"fmt"
	"math"
)

// eqEpsilon is the tolerance of ==, != and the equal part of <= and >=.
const eqEpsilon = 1e-9

// ErrNoTree is returned by Decide for a tree the policy does not define.
var ErrNoTree = errors.New("policy does not define this tree")

// DecideError is a failure while evaluating a tree: division by zero, an
// action parameter out of range. It names the tree and node.
type DecideError struct {
	Tree   Tree
	NodeID string
	Reason string
}

func (e *DecideError) Error() string {
	return fmt.Sprintf("%s node %q: %s", e.Tree, e.NodeID, e.Reason)
}

// evalErr is the allocation-free error of the value evaluator; Decide turns
// it into a DecideError naming the node.
type evalErr uint8

const (
	errNone evalErr = iota
	errDivZero
	errNaN
)

func (e evalErr) String() string {
	switch e {
	case errDivZero:
		return "division by zero"
	case errNaN:
		return "value is not a number"
	}
	return "ok"
}

// Decide evaluates tree t against ctx and returns the chosen action with its
// parameters computed. It never panics; a broken input is an error.
func (p *Policy) Decide(t Tree, ctx *Context) (a Action, err error) {
	if p == nil || t < 0 || t >= NumTrees || p.trees[t] == nil {
		return Action{}, fmt.Errorf("%s: %w", t, ErrNoTree)
	}
	if ctx == nil {
		return Action{}, fmt.Errorf("%s: nil context", t)
	}
	defer func() {
		// Belt and braces: compilation rules out every panic we know of.
		if r := recover(); r != nil {
			a, err = Action{}, fmt.Errorf("%s: internal error while deciding: %v", t, r)
		}
	}()
	pr := p.trees[t]
	i := int32(0)
	for range MaxDepth + 2 {
		n := &pr.nodes[i]
		if n.act >= 0 {
			return pr.build(&pr.acts[n.act], ctx)
		}
		ok, e := pr.cond(n.cond, ctx)
		if e != errNone {
			return Action{}, &DecideError{Tree: t, NodeID: n.id, Reason: e.String()}
		}
		if ok {
			i = n.onTrue
		} else {
			i = n.onFalse
		}
	}
	return Action{}, fmt.Errorf("%s: tree deeper than %d levels", t, MaxDepth)
}

func (pr *program) cond(i int32, ctx *Context) (bool, evalErr) {
	c := &pr.conds[i]
	switch c.op {
	case cAnd:
		for _, k := range c.kids {
			ok, e := pr.cond(k, ctx)
			if e != errNone || !ok {
				return false, e
			}
		}
		return true, errNone
	case cOr:
		for _, k := range c.kids {
			ok, e := pr.cond(k, ctx)
			if e != errNone || ok {
				return ok, e
			}
		}
		return false, errNone
	case cNot:
		ok, e := pr.cond(c.kids[0], ctx)
		return !ok, e
	}
	l, e := pr.val(c.l, ctx)
	if e != errNone {
		return false, e
	}
	r, e := pr.val(c.r, ctx)
	if e != errNone {
		return false, e
	}
	switch c.op {
	case cEq:
		return math.Abs(l-r) < eqEpsilon, errNone
	case cNe:
		return !(math.Abs(l-r) < eqEpsilon), errNone
	case cLt:
		return l < r, errNone
	case cLe:
		return l <= r || math.Abs(l-r) < eqEpsilon, errNone
	case cGt:
		return l > r, errNone
	default: // cGe
		return l >= r || math.Abs(l-r) < eqEpsilon, errNone
	}
}

func (pr *program) val(i int32, ctx *Context) (float64, evalErr) {
	v := &pr.vals[i]
	switch v.op {
	case vConst:
		return v.k, errNone
	case vField:
		return ctx.V[v.idx], errNone
	case vState:
		if int(v.idx) < len(ctx.State) {
			return ctx.State[v.idx], errNone
		}
		return 0, errNone
	case vMax, vMin:
		best := math.Inf(1)
		if v.op == vMax {
			best = math.Inf(-1)
		}
		for _, a := range v.args {
			x, e := pr.val(a, ctx)
			if e != errNone {
				return 0, e
			}
			if (v.op == vMax && x > best) || (v.op == vMin && x < best) {
				best = x
			}
		}
		return best, errNone
	}
	a, e := pr.val(v.a, ctx)
	if e != errNone {
		return 0, e
	}
	switch v.op {
	case vCeil:
		return math.Ceil(a), errNone
	case vFloor:
		return math.Floor(a), errNone
	case vRound:
		return math.Round(a), errNone // half away from zero, as Rust's f64::round
	case vAbs:
		return math.Abs(a), errNone
	}
	b, e := pr.val(v.b, ctx)
	if e != errNone {
		return 0, e
	}
	switch v.op {
	case vAdd:
		return a + b, errNone
	case vSub:
		return a - b, errNone
	case vMul:
		return a * b, errNone
	case vDiv:
		if math.Abs(b) < 2.220446049250313e-16 {
			return 0, errDivZero
		}
		return a / b, errNone
	case vClamp:
		hi, e := pr.val(v.c, ctx)
		if e != errNone {
			return 0, e
		}
		return math.Min(math.Max(a, b), hi), errNone
	case vDiv0:
		if math.Abs(b) < eqEpsilon {
			return pr.val(v.c, ctx)
		}
		return a / b, errNone
	}
	return 0, errNaN
}

// toInt truncates x toward zero into an int, saturating at ±2^31 so huge
// values stay harmless; NaN is an error.
func toInt(x float64) (int, bool) {
	switch {
	case math.IsNaN(x):
		return 0, false
	case x > math.MaxInt32:
		return math.MaxInt32, true
	case x < math.MinInt32:
		return math.MinInt32, true
	}
	return int(x), true
}

// clampPriority maps a computed priority into 0..255 as the reference's u8
// conversion does.
func clampPriority(x float64) int {
	switch {
	case math.IsNaN(x) || x < 0:
		return 0
	case x > 255:
		return 255
	}
	return int(x)
}

func (pr *program) build(an *anode, ctx *Context) (Action, error) {
	a := Action{Kind: an.kind, NodeID: an.nodeID, Reason: an.reason, Priority: an.priority, HasPriority: an.hasPriority, FocusCpty: an.focus, StateSlot: an.stateSlot}
	var nums [numActParams]float64
	for i, vi := range an.num {
		if vi < 0 {
			continue
		}
		x, e := pr.val(vi, ctx)
		if e != errNone {
			return Action{}, &DecideError{Tree: pr.tree, NodeID: an.nodeID, Reason: e.String()}
		}
		nums[i] = x
	}
	fail := func(format string, args ...any) (Action, error) {
		return Action{}, &DecideError{Tree: pr.tree, NodeID: an.nodeID, Reason: fmt.Sprintf(format, args...)}
	}
	switch an.kind {
	case Release, ReleaseWithCredit:
		if an.num[apTimedForTick] >= 0 {
			tick, ok := toInt(nums[apTimedForTick])
			if !ok {
				return fail("timed_for_tick is not a number")
			}
			a.TargetTick, a.HasTargetTick = max(tick, 0), true
		}
	case Split, PaceAndRelease, StaggerSplit:
		n, ok := toInt(nums[apNumSplits])
		if !ok || n < 2 {
			return fail("num_splits must be >= 2, got %v", nums[apNumSplits])
		}
		a.NumSplits = n
		if an.kind == StaggerSplit {
			first, ok1 := toInt(nums[apStaggerFirstNow])
			gap, ok2 := toInt(nums[apStaggerGapTicks])
			if !ok1 || !ok2 {
				return fail("stagger parameters are not numbers")
			}
			// Negative counts saturate at 0, as the reference's usize casts.
			first, gap = max(first, 0), max(gap, 0)
			if first > n {
				return fail("stagger_first_now (%d) cannot exceed num_splits (%d)", first, n)
			}
			a.StaggerFirstNow, a.StaggerGapTicks = first, gap
			a.Priority, a.HasPriority = clampPriority(nums[apPriorityBoost]), true
		}
	case Reprioritize:
		a.Priority, a.HasPriority = clampPriority(nums[apNewPriority]), true
	case SetReleaseBudget:
		if math.IsNaN(nums[apMaxValue]) {
			return fail("max_value_to_release is not a number")
		}
		a.MaxValueToRelease = math.Trunc(nums[apMaxValue])
		if an.num[apMaxPerCpty] >= 0 {
			if math.IsNaN(nums[apMaxPerCpty]) {
				return fail("max_per_cpty is not a number")
			}
			a.MaxPerCpty, a.HasMaxPerCpty = math.Trunc(nums[apMaxPerCpty]), true
		}
	case SetState, AddState:
		a.StateValue = nums[apStateValue]
	case PostCollateral, WithdrawCollateral:
		amt := math.Trunc(nums[apAmount])
		if math.IsNaN(amt) || amt <= 0 {
			// The reference treats a non-positive amount as no change.
			return Action{Kind: HoldCollateral, NodeID: an.nodeID, Reason: an.reason}, nil
		}
		a.Amount = amt
		if an.kind == PostCollateral && an.num[apAutoWithdraw] >= 0 && nums[apAutoWithdraw] > 0 {
			ticks, _ := toInt(nums[apAutoWithdraw])
			a.AutoWithdrawAfterTicks = ticks
		}
	}
	return a, nil
}

// ReleasesAll reports whether the payment tree is a single Release leaf
// with no parameters, so that every decision is Release whatever the
// context. The simulator skips evaluation for such policies (Fifo, the
// experiments' starting policy).
func (p *Policy) ReleasesAll() bool {
	if p == nil || p.trees[PaymentTree] == nil {
		return false
	}
	pr := p.trees[PaymentTree]
	root := &pr.nodes[0]
	if root.act < 0 {
		return false
	}
	a := &pr.acts[root.act]
	if a.kind != Release || a.hasPriority {
		return false
	}
	for _, v := range a.num {
		if v >= 0 {
			return false
		}
	}
	return true
}

// Uses reports whether tree t of p has an action node of the given kind.
func (p *Policy) Uses(t Tree, kind ActionKind) bool {
	if !p.Has(t) {
		return false
	}
	for i := range p.trees[t].acts {
		if p.trees[t].acts[i].kind == kind {
			return true
		}
	}
	return false
}

// ActionCategory is SimCash's feature category of an action kind:
// PaymentAction, BankAction, CollateralAction or RtgsAction.
func ActionCategory(k ActionKind) string {
	switch {
	case k == WithdrawFromRtgs || k == ResubmitToRtgs:
		return "RtgsAction"
	case k >= SetReleaseBudget && k <= NoAction:
		return "BankAction"
	case k >= PostCollateral && k <= HoldCollateral:
		return "CollateralAction"
	case k >= Release && k < numActionKinds:
		return "PaymentAction"
	}
	return ""
}

// ActionKinds lists the action kinds p's trees use.
func (p *Policy) ActionKinds() []ActionKind {
	var out []ActionKind
	for k := Release; k < numActionKinds; k++ {
		for t := range NumTrees {
			if p.Uses(t, k) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}
