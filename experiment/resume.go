package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"simcash/optimizer"
	"simcash/policy"
	"simcash/schema"
)

// Checkpoint is what a stored run left: the records a resumed run rebuilds
// its state from. Iterations must be the stored ones in order; a run
// continues after the last of its contiguous iterations 1..k, so records of
// an unfinished iteration k+1 are published again (and deduplicated by the
// store).
type Checkpoint struct {
	ID          string
	StartedAt   time.Time
	Iterations  []schema.Iteration
	Evaluations []schema.PolicyEvaluation
	Events      []schema.Event
}

// ErrNotResumable is returned by a Runner whose Checkpoint lacks what a
// resume needs (records written by an older simcash).
var ErrNotResumable = errors.New("run cannot be resumed")

// done returns the number k of contiguous iterations 1..k in cp.
func (cp *Checkpoint) done() int {
	k := 0
	for _, it := range cp.Iterations {
		if it.Iteration != k+1 {
			break
		}
		k++
	}
	return k
}

// restore rebuilds the loop's state after iteration k of cp: the policies
// in force, each agent's optimizer history, the convergence detector, the
// best cost, the event sequence and the model usage. It reports whether
// the run had already converged at k.
func (l *loop) restore(cp *Checkpoint) (k int, converged bool, reason string, err error) {
	k = cp.done()
	if k == 0 {
		return 0, false, "", nil
	}
	evals := map[int]map[string]*schema.PolicyEvaluation{}
	for i := range cp.Evaluations {
		e := &cp.Evaluations[i]
		if evals[e.Iteration] == nil {
			evals[e.Iteration] = map[string]*schema.PolicyEvaluation{}
		}
		evals[e.Iteration][e.Agent] = e
	}
	for _, it := range cp.Iterations[:k] {
		var pols map[string]json.RawMessage
		if err := json.Unmarshal(it.Policies, &pols); err != nil {
			return 0, false, "", fmt.Errorf("%w: iteration %d: policies: %v", ErrNotResumable, it.Iteration, err)
		}
		params := map[string]map[string]float64{}
		for _, a := range l.Config.OptimizedAgents {
			p, err := policy.Parse(pols[a])
			if err != nil {
				return 0, false, "", fmt.Errorf("%w: iteration %d: policy of %s: %v", ErrNotResumable, it.Iteration, a, err)
			}
			params[a] = p.Params()
		}
		if l.best < 0 || it.TotalCost < l.best {
			l.best = it.TotalCost
		}
		converged, reason = l.detector.Observe(it.TotalCost, params)
		for _, a := range l.Config.OptimizedAgents {
			e := evals[it.Iteration][a]
			if e == nil {
				if converged {
					continue // a converged iteration asks no agent
				}
				return 0, false, "", fmt.Errorf("%w: iteration %d has no evaluation for %s", ErrNotResumable, it.Iteration, a)
			}
			h, ok, err := historyEntry(e)
			if err != nil {
				return 0, false, "", err
			}
			if ok {
				l.history[a] = append(l.history[a], h)
			}
		}
	}
	// The policies in force after iteration k: its starting ones with its
	// accepted proposals applied.
	last := cp.Iterations[k-1]
	var pols map[string]json.RawMessage
	if err := json.Unmarshal(last.Policies, &pols); err != nil {
		return 0, false, "", fmt.Errorf("%w: iteration %d: policies: %v", ErrNotResumable, k, err)
	}
	for a, doc := range pols {
		if e := evals[k][a]; e != nil && e.Accepted {
			doc = e.ProposedPolicy
		}
		p, err := policy.Parse(doc)
		if err != nil {
			return 0, false, "", fmt.Errorf("%w: policy of %s after iteration %d: %v", ErrNotResumable, a, k, err)
		}
		l.current[a] = p
	}
	// Events of iterations after k are published again.
	for _, ev := range cp.Events {
		if ev.Iteration > k {
			continue
		}
		l.seq = max(l.seq, ev.Seq)
		if ev.EventType == "llm_interaction" {
			var d struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			}
			if json.Unmarshal(ev.Data, &d) == nil {
				l.llmCalls++
				l.tokens[0] += d.PromptTokens
				l.tokens[1] += d.CompletionTokens
			}
		}
	}
	l.iters = k
	return k, converged, reason, nil
}

// historyEntry is what the loop added to an agent's optimizer history for
// evaluation e, and whether it added anything.
func historyEntry(e *schema.PolicyEvaluation) (optimizer.HistoryEntry, bool, error) {
	h := optimizer.HistoryEntry{Iteration: e.Iteration, OldCost: e.OldCost, NewCost: e.NewCost, Reason: e.Reason}
	switch e.ReasonCode {
	case "":
		return h, false, fmt.Errorf("%w: evaluation %d/%s has no reason code (recorded by an older simcash)", ErrNotResumable, e.Iteration, e.Agent)
	case schema.ReasonUnchanged, schema.ReasonOptimizerError:
		return h, false, nil
	case schema.ReasonInvalidProposal:
		// publishEval wrapped text that was not JSON as {"invalid": text}.
		var w map[string]string
		if json.Unmarshal(e.ProposedPolicy, &w) == nil && len(w) == 1 {
			if text, ok := w["invalid"]; ok {
				h.Policy = json.RawMessage(text)
				if text == "" {
					h.Policy = nil
				}
				return h, true, nil
			}
		}
		h.Policy = e.ProposedPolicy
		return h, true, nil
	}
	p, err := policy.Parse(e.ProposedPolicy)
	if err != nil {
		return h, false, fmt.Errorf("%w: evaluation %d/%s: proposed policy: %v", ErrNotResumable, e.Iteration, e.Agent, err)
	}
	h.Policy, h.Params, h.Accepted = slices.Clone(p.JSON()), p.Params(), e.Accepted
	return h, true, nil
}

// CheckpointFrom gathers the records of run id (in publication order, as a
// stream returns them) into a Checkpoint, keeping the first copy of each
// record as the store does. It also returns the run's completion, if it
// has one (then there is nothing to resume).
func CheckpointFrom(id string, recs []schema.Record) (*Checkpoint, *schema.ExperimentCompleted) {
	cp := &Checkpoint{ID: id}
	var done *schema.ExperimentCompleted
	seen := map[string]bool{}
	for _, r := range recs {
		if r.ExperimentID() != id || seen[schema.MsgID(r)] {
			continue
		}
		seen[schema.MsgID(r)] = true
		switch v := r.(type) {
		case *schema.ExperimentStarted:
			cp.StartedAt = v.StartedAt
		case *schema.Iteration:
			cp.Iterations = append(cp.Iterations, *v)
		case *schema.PolicyEvaluation:
			cp.Evaluations = append(cp.Evaluations, *v)
		case *schema.Event:
			cp.Events = append(cp.Events, *v)
		case *schema.ExperimentCompleted:
			done = v
		}
	}
	return cp, done
}
