package policy

import "encoding/json"

// document is the JSON form of a policy. Field order here is the order of
// keys in canonical JSON.
type document struct {
	Version                 string                     `json:"version"`
	PolicyID                string                     `json:"policy_id"`
	Description             string                     `json:"description,omitempty"`
	Parameters              map[string]json.RawMessage `json:"parameters"`
	PaymentTree             *jnode                     `json:"payment_tree,omitempty"`
	BankTree                *jnode                     `json:"bank_tree,omitempty"`
	StrategicCollateralTree *jnode                     `json:"strategic_collateral_tree,omitempty"`
	EndOfTickCollateralTree *jnode                     `json:"end_of_tick_collateral_tree,omitempty"`
}

func (d *document) tree(t Tree) *jnode {
	switch t {
	case PaymentTree:
		return d.PaymentTree
	case BankTree:
		return d.BankTree
	case StrategicCollateralTree:
		return d.StrategicCollateralTree
	case EndOfTickCollateralTree:
		return d.EndOfTickCollateralTree
	}
	return nil
}

func (d *document) setTree(t Tree, n *jnode) {
	switch t {
	case PaymentTree:
		d.PaymentTree = n
	case BankTree:
		d.BankTree = n
	case StrategicCollateralTree:
		d.StrategicCollateralTree = n
	case EndOfTickCollateralTree:
		d.EndOfTickCollateralTree = n
	}
}

// jnode is a condition or an action node.
type jnode struct {
	Type        string             `json:"type"`
	NodeID      string             `json:"node_id"`
	Description string             `json:"description,omitempty"`
	Condition   *jexpr             `json:"condition,omitempty"`
	OnTrue      *jnode             `json:"on_true,omitempty"`
	OnFalse     *jnode             `json:"on_false,omitempty"`
	Action      string             `json:"action,omitempty"`
	Parameters  map[string]*jvalue `json:"parameters,omitempty"`
}

// jexpr is a boolean expression.
type jexpr struct {
	Op         string   `json:"op"`
	Left       *jvalue  `json:"left,omitempty"`
	Right      *jvalue  `json:"right,omitempty"`
	Conditions []*jexpr `json:"conditions,omitempty"`
	Condition  *jexpr   `json:"condition,omitempty"`
}

// jvalue is exactly one of a field, a parameter, a literal or a computation.
type jvalue struct {
	Field   *string         `json:"field,omitempty"`
	Param   *string         `json:"param,omitempty"`
	Value   json.RawMessage `json:"value,omitempty"`
	Compute *jcompute       `json:"compute,omitempty"`
}

// jcompute is an arithmetic computation. Which operands are used depends on
// Op: left/right for + - * /, values for max/min, value for
// ceil/floor/round/abs, value/min/max for clamp, numerator/denominator/
// default for div0.
type jcompute struct {
	Op          string    `json:"op"`
	Left        *jvalue   `json:"left,omitempty"`
	Right       *jvalue   `json:"right,omitempty"`
	Values      []*jvalue `json:"values,omitempty"`
	Value       *jvalue   `json:"value,omitempty"`
	Min         *jvalue   `json:"min,omitempty"`
	Max         *jvalue   `json:"max,omitempty"`
	Numerator   *jvalue   `json:"numerator,omitempty"`
	Denominator *jvalue   `json:"denominator,omitempty"`
	Default     *jvalue   `json:"default,omitempty"`
}
