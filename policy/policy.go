package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
)

// Policy is a validated, compiled policy document. It is immutable and safe
// for concurrent use; WithParams returns a new Policy.
type Policy struct {
	doc       document
	params    map[string]float64
	stateKeys []string
	trees     [NumTrees]*program
	opt       *compiledOptions // kept so WithParams re-checks constraints
	// builtin marks a named built-in (Fifo, Deadline, ...): SimCash's engine
	// reads a pool fraction only from a JSON policy's parameters.
	builtin bool
	// warnings: what SimCash accepts and we follow, but is likely a mistake.
	warnings []Problem
}

// Warnings lists what the policy does that SimCash accepts and we follow,
// but that its author probably did not mean (an action the bank tree
// ignores, a priority_flag that is not a literal).
func (p *Policy) Warnings() []Problem { return p.warnings }

// ParamType is the type of a constrained parameter.
type ParamType string

const (
	ParamFloat ParamType = "float"
	ParamInt   ParamType = "int"
	ParamEnum  ParamType = "enum"
)

// ParamSpec constrains one parameter (experiment policy_constraints
// allowed_parameters).
type ParamSpec struct {
	Name          string
	Type          ParamType // "" means float
	Min, Max      *float64  // inclusive bounds; nil = unbounded
	AllowedValues []float64 // for enum: the value must be one of these
}

// Options restricts what a policy may use. A nil restriction allows
// everything the engine allows.
type Options struct {
	// Params, when non-nil, lists the only parameters a policy may define,
	// with their types and bounds.
	Params []ParamSpec
	// Fields, when non-nil, lists the only field names a policy may read
	// (bank_state_* registers included).
	Fields []string
	// Actions, when non-nil, lists the actions allowed per tree; a tree
	// missing from the map may not be present in the policy.
	Actions map[Tree][]ActionKind
}

type compiledOptions struct {
	params    map[string]ParamSpec
	paramList string
	fields    map[string]bool
	fieldList string
	actions   map[Tree]map[ActionKind]bool
}

func (o *compiledOptions) actionList(t Tree) string {
	var ks []ActionKind
	for k := range o.actions[t] {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	if len(ks) == 0 {
		return "none"
	}
	return kindList(ks)
}

func compileOptions(o Options) *compiledOptions {
	co := &compiledOptions{}
	if o.Params != nil {
		co.params = make(map[string]ParamSpec, len(o.Params))
		names := make([]string, 0, len(o.Params))
		for _, p := range o.Params {
			co.params[p.Name] = p
			names = append(names, p.Name)
		}
		sort.Strings(names)
		co.paramList = strings.Join(names, ", ")
		if co.paramList == "" {
			co.paramList = "none"
		}
	}
	if o.Fields != nil {
		co.fields = make(map[string]bool, len(o.Fields))
		for _, f := range o.Fields {
			co.fields[f] = true
		}
		sorted := slices.Clone(o.Fields)
		sort.Strings(sorted)
		co.fieldList = strings.Join(sorted, ", ")
		if co.fieldList == "" {
			co.fieldList = "none"
		}
	}
	if o.Actions != nil {
		co.actions = make(map[Tree]map[ActionKind]bool, len(o.Actions))
		for t, ks := range o.Actions {
			m := make(map[ActionKind]bool, len(ks))
			for _, k := range ks {
				m[k] = true
			}
			co.actions[t] = m
		}
	}
	return co
}

// checkParams reports parameter values that break the constraints.
func (o *compiledOptions) checkParams(params map[string]float64, probs *[]Problem) {
	if o == nil || o.params == nil {
		return
	}
	names := slices.Sorted(maps.Keys(params))
	for _, name := range names {
		v := params[name]
		spec, ok := o.params[name]
		if !ok {
			*probs = append(*probs, Problem{Reason: fmt.Sprintf("parameter %q is not allowed (allowed: %s)", name, o.paramList)})
			continue
		}
		bad := func(format string, args ...any) {
			*probs = append(*probs, Problem{Reason: fmt.Sprintf("parameter %q = %v: ", name, v) + fmt.Sprintf(format, args...)})
		}
		switch spec.Type {
		case ParamInt:
			if v != math.Trunc(v) {
				bad("must be an integer")
			}
		case ParamEnum:
			if len(spec.AllowedValues) > 0 && !slices.Contains(spec.AllowedValues, v) {
				bad("must be one of %v", spec.AllowedValues)
			}
		}
		if spec.Min != nil && v < *spec.Min {
			bad("below the minimum %v", *spec.Min)
		}
		if spec.Max != nil && v > *spec.Max {
			bad("above the maximum %v", *spec.Max)
		}
	}
}

// Parse decodes, validates and compiles a policy document.
func Parse(data []byte) (*Policy, error) {
	return ParseWith(data, Options{})
}

// ParseWith is Parse with extra constraints (an experiment's
// policy_constraints). The error lists every violation found.
func ParseWith(data []byte, opt Options) (*Policy, error) {
	var doc document
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("policy JSON does not decode: %w (expect an object with version, policy_id, parameters and *_tree nodes)", err)
	}
	if dec.More() {
		return nil, errors.New("policy JSON has trailing data after the document")
	}
	var co *compiledOptions
	if opt.Params != nil || opt.Fields != nil || opt.Actions != nil {
		co = compileOptions(opt)
	}
	return build(doc, nil, co)
}

// ParseFile reads and parses a policy file.
func ParseFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	// A policy is kilobytes; a bound keeps /dev/zero from eating memory.
	const maxPolicyBytes = 16 << 20
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if len(data) > maxPolicyBytes {
		return nil, fmt.Errorf("policy %s is larger than 16 MiB", path)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// build validates and compiles doc. params, when non-nil, replaces the
// document's decoded parameters.
func build(doc document, params map[string]float64, co *compiledOptions) (*Policy, error) {
	var probs []Problem
	if params == nil {
		params = paramValues(doc.Parameters, &probs)
	}
	if doc.Version == "" {
		doc.Version = "1.0"
	}
	// Re-encode parameters from their values so JSON() is canonical
	// (1.0 and 1 both become 1) whichever way they were set.
	doc.Parameters = make(map[string]json.RawMessage, len(params))
	for k, v := range params {
		b, err := json.Marshal(v)
		if err != nil {
			probs = append(probs, Problem{Reason: fmt.Sprintf("parameter %q: %v is not a finite number", k, v)})
			continue
		}
		doc.Parameters[k] = b
	}
	co.checkParams(params, &probs)

	set := map[string]bool{}
	for t := range NumTrees {
		collectState(doc.tree(t), set, 0)
	}
	keys := slices.Sorted(maps.Keys(set))
	if len(keys) > MaxStateKeys {
		probs = append(probs, Problem{Reason: fmt.Sprintf("%d state registers used, at most %d allowed: %s", len(keys), MaxStateKeys, strings.Join(keys, ", "))})
	}
	slots := make(map[string]int, len(keys))
	for i, k := range keys {
		slots[k] = i
	}

	p := &Policy{doc: doc, params: params, stateKeys: keys, opt: co}
	var warns []Problem
	if doc.PaymentTree == nil && doc.BankTree == nil && doc.StrategicCollateralTree == nil && doc.EndOfTickCollateralTree == nil {
		probs = append(probs, Problem{Reason: "the policy defines no tree (want at least payment_tree)"})
	}
	for t := range NumTrees {
		root := doc.tree(t)
		if root == nil {
			continue
		}
		if co != nil && co.actions != nil && co.actions[t] == nil {
			probs = append(probs, Problem{Tree: t.String(), Reason: "this tree is not allowed by the constraints (no actions allowed)"})
			continue
		}
		if id, bad := nestTooDeep(root, 0); bad {
			probs = append(probs, Problem{Tree: t.String(), NodeID: id, Reason: fmt.Sprintf("expression nested deeper than %d levels", maxNest)})
			continue
		}
		c := &compiler{tree: t, prog: &program{tree: t}, params: params, slots: slots, opt: co, ids: map[string]bool{}, probs: &probs, warns: &warns}
		c.node(root, "root", 0)
		p.trees[t] = c.prog
	}
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	p.warnings = warns
	return p, nil
}

// ID returns the document's policy_id.
func (p *Policy) ID() string { return p.doc.PolicyID }

// Description returns the document's description.
func (p *Policy) Description() string { return p.doc.Description }

// Has reports whether the policy defines tree t.
func (p *Policy) Has(t Tree) bool {
	return p != nil && t >= 0 && t < NumTrees && p.trees[t] != nil
}

// Param returns the value of a parameter.
func (p *Policy) Param(name string) (float64, bool) {
	v, ok := p.params[name]
	return v, ok
}

// Params returns a copy of all parameters.
func (p *Policy) Params() map[string]float64 { return maps.Clone(p.params) }

// WithParams returns a copy of p with the given parameters set or
// overridden, revalidated (against the constraints p was parsed with).
func (p *Policy) WithParams(set map[string]float64) (*Policy, error) {
	params := maps.Clone(p.params)
	for k, v := range set {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("parameter %q: %v is not a finite number", k, v)
		}
		params[k] = v
	}
	q, err := build(p.doc, params, p.opt)
	if q != nil {
		q.builtin = p.builtin
	}
	return q, err
}

// IsBuiltin reports whether p is one of the named built-ins rather than a
// JSON policy (FromJson, Inline, InlineJson).
func (p *Policy) IsBuiltin() bool { return p != nil && p.builtin }

// AsJSON returns p as a JSON policy: the same trees and parameters, no
// longer marked as a built-in.
func (p *Policy) AsJSON() *Policy {
	if !p.builtin {
		return p
	}
	q := *p
	q.builtin = false
	return &q
}

// StateKeys returns the bank_state_* register names the policy uses; the
// index of a name is its slot in Context.State and Action.StateSlot.
func (p *Policy) StateKeys() []string { return slices.Clone(p.stateKeys) }

// JSON returns the canonical JSON of the document: fixed key order,
// parameters sorted, unknown keys dropped, trees absent when undefined.
func (p *Policy) JSON() []byte {
	b, err := json.Marshal(p.doc)
	if err != nil { // cannot happen: the document decoded from JSON
		return nil
	}
	return b
}

// Builtin returns one of the reference system's built-in policies: "Fifo"
// (release everything), "Deadline" (drop past-deadline payments, release
// those within urgency_threshold ticks of their deadline, hold the rest) or
// "LiquidityAware" (Deadline's urgency rule, and outside it release only
// while balance minus the payment stays at least target_buffer). Override
// their parameters with WithParams.
func Builtin(name string) (*Policy, error) {
	src, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("unknown built-in policy %q (want %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	p, err := Parse([]byte(src))
	if p != nil {
		p.builtin = true
	}
	return p, err
}

// BuiltinNames lists the names Builtin accepts.
func BuiltinNames() []string { return slices.Sorted(maps.Keys(builtins)) }
