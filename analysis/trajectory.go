package analysis

import "simcash/schema"

// Point is one iteration of an agent's trajectory: the policy in force and
// its cost, and the proposal evaluated in that iteration.
type Point struct {
	Iteration int     `json:"iteration"`
	Cost      int64   `json:"cost"` // of the policy in force (bootstrap mean), cents
	Param     float64 `json:"param"`
	HasParam  bool    `json:"has_param"` // the policy in force carries the parameter
	// Proposal is nil when nothing was evaluated (the run converged, or the
	// optimizer failed before proposing).
	Proposal *Proposal `json:"proposal,omitempty"`
}

// Proposal is the policy an optimizer proposed in one iteration.
type Proposal struct {
	Param      float64 `json:"param"`
	HasParam   bool    `json:"has_param"`
	Cost       int64   `json:"cost"` // new_cost, cents
	Evaluated  bool    `json:"evaluated"`
	Accepted   bool    `json:"accepted"`
	ReasonCode string  `json:"reason_code"`
	Reason     string  `json:"reason"`
}

// Trajectory is agent's path through the run for parameter param (which
// may be empty: costs only).
func (r *Run) Trajectory(agent, param string) ([]Point, error) {
	if err := r.checkAgent(agent); err != nil {
		return nil, err
	}
	out := make([]Point, 0, len(r.Iterations))
	for _, it := range r.Iterations {
		p := Point{Iteration: it.Iteration, Cost: it.AgentCosts[agent]}
		if param != "" {
			p.Param, p.HasParam = r.paramsOf(r.policyAt(agent, it.Iteration))[param]
		}
		if e := r.evaluation(agent, it.Iteration); e != nil {
			pr := &Proposal{Cost: e.NewCost, Accepted: e.Accepted, ReasonCode: e.ReasonCode, Reason: e.Reason,
				Evaluated: e.NumSamples > 0}
			if param != "" {
				pr.Param, pr.HasParam = r.paramsOf(e.ProposedPolicy)[param]
			}
			switch pr.ReasonCode {
			case schema.ReasonInvalidProposal, schema.ReasonOptimizerError:
				pr.HasParam = false
			}
			p.Proposal = pr
		}
		out = append(out, p)
	}
	return out, nil
}
