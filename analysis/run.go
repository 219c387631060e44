package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"simcash/policy"
	"simcash/store"
)

// Run is one stored experiment with its iterations and evaluations. It is
// not safe for concurrent use: it caches decoded policies.
type Run struct {
	Detail      *store.ExperimentDetail
	Iterations  []store.IterationRow
	Evaluations []store.EvaluationRow

	starts map[int]map[string]json.RawMessage // iteration -> agent -> policy in force; 0: final
	params map[string]map[string]float64      // policy document -> its parameters
}

// Load reads experiment id through r.
func Load(ctx context.Context, r store.Reader, id string) (*Run, error) {
	d, err := r.Show(ctx, id)
	if err != nil {
		return nil, err
	}
	its, err := r.Iterations(ctx, id)
	if err != nil {
		return nil, err
	}
	evs, err := r.Evaluations(ctx, id, store.EvalFilter{})
	if err != nil {
		return nil, err
	}
	return &Run{Detail: d, Iterations: its, Evaluations: evs}, nil
}

// LoadAll loads each of ids.
func LoadAll(ctx context.Context, r store.Reader, ids []string) ([]*Run, error) {
	out := make([]*Run, 0, len(ids))
	for _, id := range ids {
		run, err := Load(ctx, r, id)
		if err != nil {
			return nil, err
		}
		out = append(out, run)
	}
	return out, nil
}

// ID is the run's experiment id.
func (r *Run) ID() string { return r.Detail.ExperimentID }

// Agents are the optimized agents: those with costs in the iterations (or,
// before the first iteration, in the final costs), sorted.
func (r *Run) Agents() []string {
	set := map[string]bool{}
	for _, it := range r.Iterations {
		for a := range it.AgentCosts {
			set[a] = true
		}
	}
	for a := range r.Detail.AgentFinalCosts {
		set[a] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// HasAgent reports whether agent is one of the run's optimized agents.
func (r *Run) HasAgent(agent string) bool { return slices.Contains(r.Agents(), agent) }

// Config decodes the recorded config into a generic map.
func (r *Run) Config() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Detail.Config, &m)
	return m
}

// MaxIterations is convergence.max_iterations from the recorded config, or
// the number of iterations when the config does not say.
func (r *Run) MaxIterations() int {
	var c struct {
		Convergence struct {
			MaxIterations int `json:"max_iterations"`
		} `json:"convergence"`
	}
	if json.Unmarshal(r.Detail.Config, &c) == nil && c.Convergence.MaxIterations > 0 {
		return c.Convergence.MaxIterations
	}
	return len(r.Iterations)
}

// policyAt returns agent's policy document in force at the start of
// iteration i (1-based); i = len+1 (or any later) is the final policy.
func (r *Run) policyAt(agent string, i int) json.RawMessage {
	if r.starts == nil {
		r.starts = make(map[int]map[string]json.RawMessage, len(r.Iterations)+1)
		for _, it := range r.Iterations {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(it.Policies, &m)
			r.starts[it.Iteration] = m
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(r.Detail.FinalPolicies, &m)
		r.starts[0] = m
	}
	if m, ok := r.starts[i]; ok && i > 0 {
		return m[agent]
	}
	return r.starts[0][agent]
}

// paramsOf is Params, remembered per document: a run repeats the same few
// policies over many iterations, and parsing one compiles it.
func (r *Run) paramsOf(doc json.RawMessage) map[string]float64 {
	if r.params == nil {
		r.params = map[string]map[string]float64{}
	}
	p, ok := r.params[string(doc)]
	if !ok {
		p = Params(doc)
		r.params[string(doc)] = p
	}
	return p
}

// evaluation returns agent's evaluation in iteration i, or nil.
func (r *Run) evaluation(agent string, i int) *store.EvaluationRow {
	for k := range r.Evaluations {
		if e := &r.Evaluations[k]; e.Agent == agent && e.Iteration == i {
			return e
		}
	}
	return nil
}

// Params reads a policy document's parameters as the policy package does,
// falling back to the document's "parameters" object when the document
// does not parse (an invalid proposal).
func Params(doc json.RawMessage) map[string]float64 {
	if len(doc) == 0 {
		return map[string]float64{}
	}
	if p, err := policy.Parse(doc); err == nil {
		return p.Params()
	}
	var d struct {
		Parameters map[string]any `json:"parameters"`
	}
	out := map[string]float64{}
	if json.Unmarshal(doc, &d) == nil {
		for k, v := range d.Parameters {
			if f, ok := v.(float64); ok {
				out[k] = f
			}
		}
	}
	return out
}

// ParameterNames lists the parameters the run's agents' policies carry, sorted.
func (r *Run) ParameterNames(agent string) []string {
	set := map[string]bool{}
	for i := 1; i <= len(r.Iterations)+1; i++ {
		for k := range r.paramsOf(r.policyAt(agent, i)) {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// checkAgent returns a clear error when agent is not one of run's agents.
func (r *Run) checkAgent(agent string) error {
	if agent == "" || r.HasAgent(agent) {
		return nil
	}
	return fmt.Errorf("%w: run %s has no agent %q (its agents: %v)", ErrBadArgument, r.ID(), agent, r.Agents())
}
