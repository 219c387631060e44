package analysis

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// PolicyDiff is what changed in one agent's policy between two iterations.
type PolicyDiff struct {
	Agent  string        `json:"agent"`
	From   int           `json:"from"` // iteration whose starting policy is the old side
	To     int           `json:"to"`   // iteration whose starting policy is the new side; last+1 is the final policy
	Params []ParamChange `json:"parameters"`
	Nodes  []NodeChange  `json:"nodes"`
}

// ParamChange is one parameter that differs; a missing side is nil.
type ParamChange struct {
	Name string   `json:"name"`
	Old  *float64 `json:"old"`
	New  *float64 `json:"new"`
}

// NodeChange is a tree node, by tree and node_id, that was added, removed
// or changed (its own fields, not its children's).
type NodeChange struct {
	Tree   string          `json:"tree"`
	NodeID string          `json:"node_id"`
	Change string          `json:"change"` // added | removed | changed
	Old    json.RawMessage `json:"old,omitempty"`
	New    json.RawMessage `json:"new,omitempty"`
}

// Diff compares agent's policy at the start of iteration from with the one
// at the start of iteration to (len+1 or 0: the final policy).
func (r *Run) Diff(agent string, from, to int) (*PolicyDiff, error) {
	if agent == "" {
		return nil, fmt.Errorf("%w: name the agent (its agents: %v)", ErrBadArgument, r.Agents())
	}
	if err := r.checkAgent(agent); err != nil {
		return nil, err
	}
	last := len(r.Iterations)
	if from == 0 {
		from = 1
	}
	if to == 0 {
		to = last + 1
	}
	if from < 1 || from > last+1 || to < 1 || to > last+1 {
		return nil, fmt.Errorf("%w: iterations %d and %d: run %s has 1 to %d (and %d for the final policy)", ErrBadArgument, from, to, r.ID(), last, last+1)
	}
	oldDoc, newDoc := r.policyAt(agent, from), r.policyAt(agent, to)
	d := &PolicyDiff{Agent: agent, From: from, To: to, Params: []ParamChange{}, Nodes: []NodeChange{}}
	op, np := r.paramsOf(oldDoc), r.paramsOf(newDoc)
	for _, k := range slices.Sorted(maps.Keys(union(op, np))) {
		o, okO := op[k]
		n, okN := np[k]
		if okO && okN && o == n {
			continue
		}
		c := ParamChange{Name: k}
		if okO {
			c.Old = &o
		}
		if okN {
			c.New = &n
		}
		d.Params = append(d.Params, c)
	}
	on, nn := treeNodes(oldDoc), treeNodes(newDoc)
	keys := slices.SortedFunc(maps.Keys(union(on, nn)), func(a, b nodeKey) int {
		return cmp.Or(cmp.Compare(a.tree, b.tree), cmp.Compare(a.id, b.id))
	})
	for _, k := range keys {
		o, okO := on[k]
		n, okN := nn[k]
		c := NodeChange{Tree: k.tree, NodeID: k.id, Old: o, New: n}
		switch {
		case !okO:
			c.Change = "added"
		case !okN:
			c.Change = "removed"
		case !bytes.Equal(o, n):
			c.Change = "changed"
		default:
			continue
		}
		d.Nodes = append(d.Nodes, c)
	}
	return d, nil
}

func union[K comparable, V any](a, b map[K]V) map[K]bool {
	out := map[K]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

type nodeKey struct{ tree, id string }

// treeNodes indexes every node with a node_id in a policy's trees by tree
// and id. A node's value is its own fields, with child nodes replaced by
// {"node_id": ...} so that a change deep in a tree marks only that node.
func treeNodes(doc json.RawMessage) map[nodeKey]json.RawMessage {
	out := map[nodeKey]json.RawMessage{}
	var m map[string]any
	if json.Unmarshal(doc, &m) != nil {
		return out
	}
	for tree, root := range m {
		if _, ok := root.(map[string]any); ok && tree != "parameters" {
			walkNodes(tree, root, out)
		}
	}
	return out
}

func walkNodes(tree string, v any, out map[nodeKey]json.RawMessage) any {
	switch x := v.(type) {
	case map[string]any:
		own := make(map[string]any, len(x))
		for k, e := range x {
			own[k] = walkNodes(tree, e, out)
		}
		if id, ok := x["node_id"].(string); ok {
			b, _ := json.Marshal(own)
			out[nodeKey{tree, id}] = b
			return map[string]any{"node_id": id}
		}
		return own
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = walkNodes(tree, e, out)
		}
		return l
	}
	return v
}

// PolicyVersion is an agent's policy at the start of one iteration.
type PolicyVersion struct {
	Iteration int                `json:"iteration"` // last+1: the final policy
	Final     bool               `json:"final"`
	Params    map[string]float64 `json:"parameters"`
	Accepted  bool               `json:"accepted"` // a proposal was accepted in this iteration
	Policy    json.RawMessage    `json:"policy"`
}

// Policies is the agent's policy at every iteration, and the final one:
// the reference's policy evolution.
func (r *Run) Policies(agent string) ([]PolicyVersion, error) {
	if agent == "" {
		return nil, fmt.Errorf("%w: name the agent (its agents: %v)", ErrBadArgument, r.Agents())
	}
	if err := r.checkAgent(agent); err != nil {
		return nil, err
	}
	var out []PolicyVersion
	for _, it := range r.Iterations {
		doc := r.policyAt(agent, it.Iteration)
		out = append(out, PolicyVersion{Iteration: it.Iteration, Params: r.paramsOf(doc), Accepted: it.AcceptedChanges[agent], Policy: doc})
	}
	if r.Detail.CompletedAt != nil {
		doc := r.policyAt(agent, len(r.Iterations)+1)
		out = append(out, PolicyVersion{Iteration: len(r.Iterations) + 1, Final: true, Params: r.paramsOf(doc), Policy: doc})
	}
	return out, nil
}
