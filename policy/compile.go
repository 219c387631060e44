package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// MaxDepth is the deepest a condition chain may go (the root is depth 0).
const MaxDepth = 100

// RTGS priorities carried in Action.Priority by ResubmitToRtgs: higher is
// more urgent.
const (
	RtgsNormal       = 0
	RtgsUrgent       = 1
	RtgsHighlyUrgent = 2
)

var rtgsPriorities = map[string]int{"Normal": RtgsNormal, "Urgent": RtgsUrgent, "HighlyUrgent": RtgsHighlyUrgent}

// priority_flag strings, as the reference maps them; any other string is 5.
var priorityFlags = map[string]int{"HIGH": 10, "MEDIUM": 5, "LOW": 1}

type pkind uint8

const (
	pNum    pkind = iota // a numeric value: literal, field, param or compute
	pReason              // free text
	pKey                 // a bank_state_* register name
	pRtgs                // HighlyUrgent | Urgent | Normal
	pFlag                // HIGH | MEDIUM | LOW
	pList                // a list of strings
)

type pspec struct {
	name     string
	kind     pkind
	slot     int // numeric slot for pNum
	required bool
	ignored  bool // checked but without effect, as in the reference
}

var actionParams = func() [numActionKinds][]pspec {
	var t [numActionKinds][]pspec
	release := []pspec{{name: "priority_flag", kind: pFlag}, {name: "timed_for_tick", kind: pNum, slot: apTimedForTick}}
	t[Release] = release
	t[ReleaseWithCredit] = release
	splits := []pspec{{name: "num_splits", kind: pNum, slot: apNumSplits, required: true}}
	t[Split] = splits
	t[PaceAndRelease] = splits
	t[StaggerSplit] = []pspec{
		{name: "num_splits", kind: pNum, slot: apNumSplits, required: true},
		{name: "stagger_first_now", kind: pNum, slot: apStaggerFirstNow, required: true},
		{name: "stagger_gap_ticks", kind: pNum, slot: apStaggerGapTicks, required: true},
		{name: "priority_boost_children", kind: pNum, slot: apPriorityBoost, required: true},
	}
	t[Reprioritize] = []pspec{{name: "new_priority", kind: pNum, slot: apNewPriority, required: true}}
	t[ResubmitToRtgs] = []pspec{{name: "rtgs_priority", kind: pRtgs, required: true}}
	t[SetReleaseBudget] = []pspec{
		{name: "max_value_to_release", kind: pNum, slot: apMaxValue, required: true},
		{name: "max_per_counterparty", kind: pNum, slot: apMaxPerCpty},
		{name: "focus_counterparties", kind: pList},
		// The spelling used by the reference's policy files, which its
		// interpreter never reads: accepted, type-checked, without effect,
		// so those files give the reference's numbers.
		{name: "max_per_cpty", kind: pNum, slot: apMaxPerCpty, ignored: true},
		{name: "focus_cpty_list", kind: pList, ignored: true},
	}
	state := []pspec{
		{name: "key", kind: pKey, required: true},
		{name: "value", kind: pNum, slot: apStateValue, required: true},
	}
	t[SetState] = state
	t[AddState] = state
	t[PostCollateral] = []pspec{
		{name: "amount", kind: pNum, slot: apAmount, required: true},
		{name: "auto_withdraw_after_ticks", kind: pNum, slot: apAutoWithdraw},
	}
	t[WithdrawCollateral] = []pspec{{name: "amount", kind: pNum, slot: apAmount, required: true}}
	return t
}()

// Problem is one thing wrong with a policy document.
type Problem struct {
	Tree   string // "" for document-level problems
	NodeID string // "" when the problem is not in a node
	Reason string
}

func (p Problem) String() string {
	switch {
	case p.Tree == "":
		return p.Reason
	case p.NodeID == "":
		return p.Tree + ": " + p.Reason
	}
	return fmt.Sprintf("%s node %q: %s", p.Tree, p.NodeID, p.Reason)
}

// ValidationError lists every problem found in a policy document.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid policy: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid policy: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// compiler turns one tree of a document into a program, collecting problems.
type compiler struct {
	tree   Tree
	prog   *program
	params map[string]float64
	slots  map[string]int
	opt    *compiledOptions
	ids    map[string]bool
	probs  *[]Problem
	warns  *[]Problem
}

// warn records something SimCash accepts and we follow, but that the
// policy's author probably did not mean.
func (c *compiler) warn(nodeID, format string, args ...any) {
	*c.warns = append(*c.warns, Problem{Tree: c.tree.String(), NodeID: nodeID, Reason: fmt.Sprintf(format, args...)})
}

func (c *compiler) problem(nodeID, format string, args ...any) {
	*c.probs = append(*c.probs, Problem{Tree: c.tree.String(), NodeID: nodeID, Reason: fmt.Sprintf(format, args...)})
}

// node compiles n and returns its index in prog.nodes, or -1.
func (c *compiler) node(n *jnode, where string, depth int) int32 {
	if n == nil {
		c.problem("", "%s is missing", where)
		return -1
	}
	id := n.NodeID
	if id == "" {
		c.problem("", "%s has no node_id", where)
		id = where
	} else if c.ids[id] {
		c.problem(id, "duplicate node_id")
	}
	c.ids[id] = true
	if depth > MaxDepth {
		c.problem(id, "tree deeper than %d levels", MaxDepth)
		return -1
	}
	idx := int32(len(c.prog.nodes))
	c.prog.nodes = append(c.prog.nodes, tnode{id: id, cond: -1, onTrue: -1, onFalse: -1, act: -1})
	switch n.Type {
	case "condition":
		if n.Action != "" {
			c.problem(id, "condition node has an action %q", n.Action)
		}
		var cond int32 = -1
		if n.Condition == nil {
			c.problem(id, "condition node has no condition")
		} else {
			cond = c.cond(n.Condition, id)
		}
		t := c.node(n.OnTrue, fmt.Sprintf("on_true of %q", id), depth+1)
		f := c.node(n.OnFalse, fmt.Sprintf("on_false of %q", id), depth+1)
		c.prog.nodes[idx].cond, c.prog.nodes[idx].onTrue, c.prog.nodes[idx].onFalse = cond, t, f
	case "action":
		if n.Condition != nil || n.OnTrue != nil || n.OnFalse != nil {
			c.problem(id, "action node has condition or branches")
		}
		c.prog.nodes[idx].act = c.action(n, id)
	case "":
		c.problem(id, `missing "type" (want "condition" or "action")`)
	default:
		c.problem(id, `unknown node type %q (want "condition" or "action")`, n.Type)
	}
	return idx
}

func (c *compiler) cond(e *jexpr, id string) int32 {
	var op cop
	switch e.Op {
	case "==":
		op = cEq
	case "!=":
		op = cNe
	case "<":
		op = cLt
	case "<=":
		op = cLe
	case ">":
		op = cGt
	case ">=":
		op = cGe
	case "and":
		op = cAnd
	case "or":
		op = cOr
	case "not":
		op = cNot
	case "":
		c.problem(id, `condition has no "op"`)
		return c.constCond()
	default:
		c.problem(id, "unknown condition op %q (want == != < <= > >= and or not)", e.Op)
		return c.constCond()
	}
	cn := cnode{op: op, l: -1, r: -1}
	switch op {
	case cAnd, cOr:
		if len(e.Conditions) == 0 {
			c.problem(id, "%q needs a non-empty \"conditions\" list", e.Op)
		}
		for _, k := range e.Conditions {
			if k == nil {
				c.problem(id, "%q has a null condition", e.Op)
				continue
			}
			cn.kids = append(cn.kids, c.cond(k, id))
		}
	case cNot:
		if e.Condition == nil {
			c.problem(id, `"not" needs a "condition"`)
			return c.constCond()
		}
		cn.kids = []int32{c.cond(e.Condition, id)}
	default:
		cn.l = c.val(e.Left, id, fmt.Sprintf("left of %q", e.Op))
		cn.r = c.val(e.Right, id, fmt.Sprintf("right of %q", e.Op))
	}
	c.prog.conds = append(c.prog.conds, cn)
	return int32(len(c.prog.conds) - 1)
}

// constCond stands in for a broken condition so compilation can go on and
// report further problems.
func (c *compiler) constCond() int32 {
	z := c.konst(0)
	c.prog.conds = append(c.prog.conds, cnode{op: cEq, l: z, r: z})
	return int32(len(c.prog.conds) - 1)
}

func (c *compiler) konst(k float64) int32 {
	c.prog.vals = append(c.prog.vals, vnode{op: vConst, k: k})
	return int32(len(c.prog.vals) - 1)
}

func (c *compiler) push(v vnode) int32 {
	c.prog.vals = append(c.prog.vals, v)
	return int32(len(c.prog.vals) - 1)
}

func countSet(v *jvalue) int {
	n := 0
	if v.Field != nil {
		n++
	}
	if v.Param != nil {
		n++
	}
	if v.Value != nil {
		n++
	}
	if v.Compute != nil {
		n++
	}
	return n
}

// literal decodes a JSON literal as a number (booleans are 1 and 0).
func literal(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, true
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if b {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// val compiles a numeric value and returns its index in prog.vals.
func (c *compiler) val(v *jvalue, id, what string) int32 {
	if v == nil {
		c.problem(id, "%s is missing", what)
		return c.konst(0)
	}
	if n := countSet(v); n != 1 {
		c.problem(id, `%s must have exactly one of "field", "param", "value", "compute"`, what)
		return c.konst(0)
	}
	switch {
	case v.Field != nil:
		return c.field(*v.Field, id)
	case v.Param != nil:
		p, ok := c.params[*v.Param]
		if !ok {
			c.problem(id, "unknown parameter %q (not in \"parameters\")", *v.Param)
		}
		return c.konst(p)
	case v.Value != nil:
		f, ok := literal(v.Value)
		if !ok {
			c.problem(id, "%s: literal %s is not a number", what, compact(v.Value))
		}
		return c.konst(f)
	}
	return c.compute(v.Compute, id)
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	s := b.String()
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

func (c *compiler) field(name, id string) int32 {
	if c.opt != nil && c.opt.fields != nil && !c.opt.fields[name] {
		c.problem(id, "field %q is not allowed here (allowed: %s)", name, c.opt.fieldList)
	}
	if IsStateKey(name) {
		slot, ok := c.slots[name]
		if !ok { // cannot happen: slots are collected from the same document
			c.problem(id, "internal: no slot for %q", name)
		}
		return c.push(vnode{op: vState, idx: int32(slot)})
	}
	f, ok := FieldByName(name)
	if !ok {
		c.problem(id, "unknown field %q", name)
		return c.konst(0)
	}
	if IsTxField(f) && c.tree != PaymentTree {
		c.problem(id, "field %q describes a transaction and is only available in payment_tree", name)
	}
	return c.push(vnode{op: vField, idx: int32(f)})
}

func isLiteralZero(v *jvalue) bool {
	if v == nil || v.Value == nil || countSet(v) != 1 {
		return false
	}
	f, ok := literal(v.Value)
	return ok && f == 0
}

func (c *compiler) compute(k *jcompute, id string) int32 {
	arg := func(v *jvalue, name string) int32 {
		return c.val(v, id, fmt.Sprintf("%q of compute %q", name, k.Op))
	}
	switch k.Op {
	case "+", "-", "*", "/":
		ops := map[string]vop{"+": vAdd, "-": vSub, "*": vMul, "/": vDiv}
		if k.Op == "/" && isLiteralZero(k.Right) {
			c.problem(id, "division by a literal zero")
		}
		l, r := arg(k.Left, "left"), arg(k.Right, "right")
		return c.push(vnode{op: ops[k.Op], a: l, b: r})
	case "max", "min":
		if len(k.Values) == 0 {
			c.problem(id, "compute %q needs a non-empty \"values\" list", k.Op)
			return c.konst(0)
		}
		args := make([]int32, len(k.Values))
		for i, v := range k.Values {
			args[i] = arg(v, fmt.Sprintf("values[%d]", i))
		}
		op := vMax
		if k.Op == "min" {
			op = vMin
		}
		return c.push(vnode{op: op, args: args})
	case "ceil", "floor", "round", "abs":
		ops := map[string]vop{"ceil": vCeil, "floor": vFloor, "round": vRound, "abs": vAbs}
		return c.push(vnode{op: ops[k.Op], a: arg(k.Value, "value")})
	case "clamp":
		v, lo, hi := arg(k.Value, "value"), arg(k.Min, "min"), arg(k.Max, "max")
		return c.push(vnode{op: vClamp, a: v, b: lo, c: hi})
	case "div0":
		n, d, def := arg(k.Numerator, "numerator"), arg(k.Denominator, "denominator"), arg(k.Default, "default")
		return c.push(vnode{op: vDiv0, a: n, b: d, c: def})
	case "":
		c.problem(id, `compute has no "op"`)
	default:
		c.problem(id, "unknown compute op %q (want + - * / max min ceil floor round abs clamp div0)", k.Op)
	}
	return c.konst(0)
}

// text returns the string literal of an action parameter.
func text(v *jvalue) (string, bool) {
	if v == nil || v.Value == nil || countSet(v) != 1 {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return "", false
	}
	return s, true
}

func (c *compiler) action(n *jnode, id string) int32 {
	kind, ok := ActionKindByName(n.Action)
	if !ok {
		if n.Action == "" {
			c.problem(id, `action node has no "action"`)
		} else {
			c.problem(id, "unknown action %q", n.Action)
		}
		return -1
	}
	if c.opt != nil && c.opt.actions != nil && !c.opt.actions[c.tree][kind] {
		c.problem(id, "action %q is not allowed in %s (allowed: %s)", n.Action, c.tree, c.opt.actionList(c.tree))
	}
	a := anode{kind: kind, nodeID: id}
	for i := range a.num {
		a.num[i] = -1
	}
	if !kind.LegalIn(c.tree) {
		if c.tree == BankTree {
			// The reference runs any non-bank action in the bank tree as
			// NoAction, and its own policy files use Hold there.
			a.kind = NoAction
			if kind != Hold {
				c.warn(id, "action %q in %s does nothing (SimCash reads it as NoAction)", n.Action, c.tree)
			}
		} else {
			c.problem(id, "action %q is not allowed in %s (legal: %s)", n.Action, c.tree, kindList(ActionsFor(c.tree)))
			return -1
		}
	}
	specs := actionParams[kind]
	names := make([]string, 0, len(n.Parameters))
	for name := range n.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := n.Parameters[name]
		if name == "reason" || name == "description" {
			if s, ok := text(v); ok && name == "reason" {
				a.reason = s
			}
			continue
		}
		var sp *pspec
		for i := range specs {
			if specs[i].name == name {
				sp = &specs[i]
			}
		}
		if sp == nil {
			c.problem(id, "unknown parameter %q for action %s (known: %s)", name, kind, specNames(specs))
			continue
		}
		if v == nil {
			c.problem(id, "parameter %q of %s is null", name, kind)
			continue
		}
		c.actionParam(&a, sp, v, id)
	}
	for _, sp := range specs {
		if !sp.required {
			continue
		}
		if _, ok := n.Parameters[sp.name]; !ok {
			c.problem(id, "action %s needs parameter %q", kind, sp.name)
		}
	}
	c.prog.acts = append(c.prog.acts, a)
	return int32(len(c.prog.acts) - 1)
}

func (c *compiler) actionParam(a *anode, sp *pspec, v *jvalue, id string) {
	if sp.ignored {
		var scratch anode
		for i := range scratch.num {
			scratch.num[i] = -1
		}
		a = &scratch
	}
	switch sp.kind {
	case pNum:
		a.num[sp.slot] = c.val(v, id, fmt.Sprintf("parameter %q", sp.name))
	case pKey:
		s, ok := text(v)
		if !ok || !IsStateKey(s) {
			c.problem(id, "parameter %q must be {\"value\": \"%s<name>\"}", sp.name, StatePrefix)
			return
		}
		a.stateSlot = c.slots[s]
	case pRtgs:
		s, ok := text(v)
		p, known := rtgsPriorities[s]
		if !ok || !known {
			c.problem(id, `parameter %q must be {"value": "HighlyUrgent"|"Urgent"|"Normal"}`, sp.name)
			return
		}
		a.priority, a.hasPriority = p, true
	case pFlag:
		s, ok := text(v)
		if !ok {
			// SimCash reads only a literal string here and ignores the rest.
			c.warn(id, `parameter %q is ignored unless it is {"value": "HIGH"|"MEDIUM"|"LOW"} (SimCash ignores it too)`, sp.name)
			return
		}
		p, known := priorityFlags[s]
		if !known {
			p = 5 // the reference's default for unknown flags
		}
		a.priority, a.hasPriority = p, true
	case pList:
		var list []string
		if v.Value == nil || countSet(v) != 1 || json.Unmarshal(v.Value, &list) != nil {
			c.problem(id, `parameter %q must be {"value": [list of agent ids]}`, sp.name)
			return
		}
		if len(list) > 0 {
			a.focus = list
		}
	}
}

func specNames(specs []pspec) string {
	names := []string{"reason"}
	for _, s := range specs {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

func kindList(ks []ActionKind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.String()
	}
	return strings.Join(names, ", ")
}

// collectState adds every bank_state_* name the tree uses to set.
func collectState(n *jnode, set map[string]bool, depth int) {
	if n == nil || depth > MaxDepth+1 {
		return
	}
	collectExprState(n.Condition, set, 0)
	for name, v := range n.Parameters {
		if name == "key" {
			if s, ok := text(v); ok && IsStateKey(s) {
				set[s] = true
			}
			continue
		}
		collectValState(v, set, 0)
	}
	collectState(n.OnTrue, set, depth+1)
	collectState(n.OnFalse, set, depth+1)
}

// maxNest bounds recursion through expressions built by hostile input.
const maxNest = 200

func collectExprState(e *jexpr, set map[string]bool, d int) {
	if e == nil || d > maxNest {
		return
	}
	collectValState(e.Left, set, d+1)
	collectValState(e.Right, set, d+1)
	for _, k := range e.Conditions {
		collectExprState(k, set, d+1)
	}
	collectExprState(e.Condition, set, d+1)
}

func collectValState(v *jvalue, set map[string]bool, d int) {
	if v == nil || d > maxNest {
		return
	}
	if v.Field != nil && IsStateKey(*v.Field) {
		set[*v.Field] = true
	}
	if k := v.Compute; k != nil {
		for _, x := range []*jvalue{k.Left, k.Right, k.Value, k.Min, k.Max, k.Numerator, k.Denominator, k.Default} {
			collectValState(x, set, d+1)
		}
		for _, x := range k.Values {
			collectValState(x, set, d+1)
		}
	}
}

// nestTooDeep reports whether expressions under n nest deeper than maxNest;
// such documents are rejected before compiling so recursion stays bounded.
func nestTooDeep(n *jnode, depth int) (string, bool) {
	if n == nil || depth > MaxDepth+1 {
		return "", false
	}
	if exprNest(n.Condition, 0) > maxNest {
		return n.NodeID, true
	}
	for _, v := range n.Parameters {
		if valNest(v, 0) > maxNest {
			return n.NodeID, true
		}
	}
	if id, bad := nestTooDeep(n.OnTrue, depth+1); bad {
		return id, true
	}
	return nestTooDeep(n.OnFalse, depth+1)
}

func exprNest(e *jexpr, d int) int {
	if e == nil || d > maxNest {
		return d
	}
	m := d
	for _, x := range []int{valNest(e.Left, d+1), valNest(e.Right, d+1), exprNest(e.Condition, d+1)} {
		m = max(m, x)
	}
	for _, k := range e.Conditions {
		m = max(m, exprNest(k, d+1))
	}
	return m
}

func valNest(v *jvalue, d int) int {
	if v == nil || v.Compute == nil || d > maxNest {
		return d
	}
	k := v.Compute
	m := d
	for _, x := range []*jvalue{k.Left, k.Right, k.Value, k.Min, k.Max, k.Numerator, k.Denominator, k.Default} {
		m = max(m, valNest(x, d+1))
	}
	for _, x := range k.Values {
		m = max(m, valNest(x, d+1))
	}
	return m
}

// paramValues decodes the document's parameters, reporting non-numbers.
func paramValues(raw map[string]json.RawMessage, probs *[]Problem) map[string]float64 {
	out := make(map[string]float64, len(raw))
	for name, r := range raw {
		var f float64
		if err := json.Unmarshal(r, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			*probs = append(*probs, Problem{Reason: fmt.Sprintf("parameter %q: value %s is not a number", name, compact(r))})
			continue
		}
		out[name] = f
	}
	return out
}
