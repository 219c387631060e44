package analysis

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"simcash/experiment"
	"simcash/money"
	"simcash/store"
)

// ReplayOptions select what Replay prints.
type ReplayOptions struct {
	From, To int    // iterations, inclusive; 0 means the first / last
	Agent    string // only this agent's decisions; empty: all
	// Audit adds, per iteration and agent, the optimizer's prompts and
	// answer, the parsed policy, validation errors, tokens, latency and
	// the decision with its statistics. It needs Events.
	Audit  bool
	Events []store.EventRow
	// Where is printed as the summary's "records" line.
	Where string
}

// Replay prints run as `runner run` printed it while it ran: a line per
// iteration, a line per agent decision, then the summary (when the run has
// ended and the whole run is replayed).
func Replay(w io.Writer, run *Run, o ReplayOptions) error {
	if err := run.checkAgent(o.Agent); err != nil {
		return err
	}
	last := len(run.Iterations)
	from, to := o.From, o.To
	if from == 0 {
		from = 1
	}
	if to == 0 {
		to = last
	}
	if from < 1 || to < from || (last > 0 && from > last) {
		return fmt.Errorf("%w: iterations %d:%d, but run %s has iterations 1 to %d", ErrBadArgument, o.From, o.To, run.ID(), last)
	}
	agents := run.agentOrder()
	total := run.MaxIterations()
	var audit []AuditEntry
	if o.Audit {
		audit = run.Audit(o.Events)
	}
	for _, it := range run.Iterations {
		if it.Iteration < from || it.Iteration > to {
			continue
		}
		fmt.Fprintln(w, experiment.Progress{Iteration: it.Iteration, Total: total, Cost: it.TotalCost, AgentCosts: it.AgentCosts}.Line())
		for _, a := range agents {
			if o.Agent != "" && a != o.Agent {
				continue
			}
			e := run.evaluation(a, it.Iteration)
			if e == nil {
				continue
			}
			params := run.paramsOf(run.policyAt(a, it.Iteration))
			var proposed map[string]float64
			switch {
			case e.Accepted:
				params = run.paramsOf(e.ProposedPolicy)
			case e.NumSamples > 0: // evaluated and rejected, as runner run shows it
				proposed = run.paramsOf(e.ProposedPolicy)
			}
			fmt.Fprintln(w, experiment.Progress{Iteration: it.Iteration, Total: total, Agent: a, Accepted: e.Accepted,
				Reason: e.Reason, Params: params, Proposed: proposed}.Line())
			if o.Audit {
				for _, ae := range audit {
					if ae.Iteration == it.Iteration && ae.Agent == a {
						writeAudit(w, ae)
					}
				}
			}
		}
	}
	d := run.Detail
	if d.CompletedAt == nil || from != 1 || to != last || o.Agent != "" {
		if d.CompletedAt == nil {
			fmt.Fprintf(w, "(run %s has not ended: status %s)\n", d.ExperimentID, d.Status)
		}
		return nil
	}
	out := &experiment.Outcome{ExperimentID: d.ExperimentID, Status: d.Status, Iterations: d.NumIterations,
		Converged: d.Converged, Reason: d.ConvergenceReason, AgentCosts: d.AgentFinalCosts, FinalParams: finalParams(run)}
	if d.FinalCost != nil {
		out.FinalCost = *d.FinalCost
	}
	if d.BestCost != nil {
		out.BestCost = *d.BestCost
	}
	return out.WriteSummary(w, o.Where)
}

// agentOrder is the order the loop asked the agents in: the config's
// optimized_agents, else sorted.
func (r *Run) agentOrder() []string {
	var c struct {
		Agents []string `json:"optimized_agents"`
	}
	if json.Unmarshal(r.Detail.Config, &c) == nil && len(c.Agents) > 0 {
		return c.Agents
	}
	return r.Agents()
}

// eventsOf returns the events of iteration i about agent.
func eventsOf(evs []store.EventRow, i int, agent string) []store.EventRow {
	var out []store.EventRow
	for _, e := range evs {
		if e.Iteration != i {
			continue
		}
		var d struct {
			Agent string `json:"agent"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.Agent == agent {
			out = append(out, e)
		}
	}
	return out
}

// Interaction is one optimizer call as the llm_interaction event records it.
type Interaction struct {
	Attempt          int             `json:"attempt"`
	Model            string          `json:"model"`
	SystemPrompt     string          `json:"system_prompt"`
	UserPrompt       string          `json:"user_prompt"`
	RawResponse      string          `json:"raw_response"`
	ParsedPolicy     json.RawMessage `json:"parsed_policy"`
	ParseError       string          `json:"parse_error"`
	PromptTokens     int64           `json:"prompt_tokens"`
	CompletionTokens int64           `json:"completion_tokens"`
	LatencySeconds   float64         `json:"latency_seconds"`
	Error            string          `json:"error,omitempty"`  // llm_error
	Policy           json.RawMessage `json:"policy,omitempty"` // policy_proposal (built-in optimizer)
}

// AuditEntry is what the optimizer was asked and answered for one agent in
// one iteration, and what was decided.
type AuditEntry struct {
	Iteration        int                  `json:"iteration"`
	Agent            string               `json:"agent"`
	Calls            []AuditCall          `json:"calls"`
	ValidationErrors []string             `json:"validation_errors,omitempty"`
	Evaluation       *store.EvaluationRow `json:"evaluation,omitempty"`
}

// AuditCall is one optimizer call: a model interaction, a failed call, or a
// built-in proposal.
type AuditCall struct {
	Kind string `json:"kind"` // llm_interaction | llm_error | policy_proposal
	Interaction
}

// Audit builds the audit trail of run from its events: one entry per
// iteration and agent with a decision or an optimizer call, in the order
// the loop asked the agents.
func (r *Run) Audit(events []store.EventRow) []AuditEntry {
	var out []AuditEntry
	for _, it := range r.Iterations {
		for _, a := range r.agentOrder() {
			e := AuditEntry{Iteration: it.Iteration, Agent: a, Evaluation: r.evaluation(a, it.Iteration)}
			for _, ev := range eventsOf(events, it.Iteration, a) {
				var d struct {
					Interaction
					Errors []string `json:"errors"` // policy_rejected
				}
				if json.Unmarshal(ev.Data, &d) != nil {
					continue
				}
				switch ev.EventType {
				case "llm_interaction", "llm_error", "policy_proposal":
					e.Calls = append(e.Calls, AuditCall{Kind: ev.EventType, Interaction: d.Interaction})
				case "policy_rejected":
					e.ValidationErrors = append(e.ValidationErrors, d.Errors...)
				}
			}
			if e.Evaluation != nil || len(e.Calls) > 0 {
				out = append(out, e)
			}
		}
	}
	return out
}

// writeAudit prints an audit entry under its decision line.
func writeAudit(w io.Writer, a AuditEntry) {
	for _, c := range a.Calls {
		switch c.Kind {
		case "llm_interaction":
			fmt.Fprintf(w, "    [audit] model call, attempt %d: %s, %d prompt + %d completion tokens, %.2f s\n",
				c.Attempt, Printable(c.Model), c.PromptTokens, c.CompletionTokens, c.LatencySeconds)
			block(w, "system prompt", c.SystemPrompt)
			block(w, "user prompt", c.UserPrompt)
			block(w, "answer", c.RawResponse)
			if len(c.ParsedPolicy) > 0 && string(c.ParsedPolicy) != "null" {
				block(w, "parsed policy", string(c.ParsedPolicy))
			}
			if c.ParseError != "" {
				block(w, "parse error", c.ParseError)
			}
		case "llm_error":
			fmt.Fprintf(w, "    [audit] model call failed, attempt %d: %s\n", c.Attempt, Printable(c.Error))
		case "policy_proposal":
			fmt.Fprintf(w, "    [audit] proposal, attempt %d (built-in optimizer)\n", c.Attempt)
			block(w, "policy", string(c.Policy))
		}
	}
	if len(a.ValidationErrors) > 0 {
		block(w, "validation errors", strings.Join(a.ValidationErrors, "\n"))
	}
	e := a.Evaluation
	if e == nil {
		return
	}
	fmt.Fprintf(w, "    [audit] decision: %s (%s): %s\n", Verdict(e.Accepted), e.ReasonCode, Printable(e.Reason))
	if s := EvaluationStats(e); s != "" {
		fmt.Fprintf(w, "            %s\n", s)
	}
}

// Verdict is "accepted" or "rejected".
func Verdict(accepted bool) string {
	if accepted {
		return "accepted"
	}
	return "rejected"
}

// EvaluationStats describes an evaluation's paired samples for people, or
// "" when the proposal was not evaluated.
func EvaluationStats(e *store.EvaluationRow) string {
	if e.NumSamples == 0 {
		return ""
	}
	s := fmt.Sprintf("%s, %d paired sample(s), old %s, new %s", e.EvaluationMode, e.NumSamples,
		money.Dollars(e.OldCost), money.Dollars(e.NewCost))
	if e.MeanDelta != nil {
		s += ", mean delta " + money.Dollars(*e.MeanDelta)
	}
	if e.DeltaStdDev != nil && e.NumSamples > 1 {
		s += " (sd " + money.Dollars(*e.DeltaStdDev)
		if e.DeltaCILower != nil && e.DeltaCIUpper != nil {
			s += fmt.Sprintf(", 95%% CI [%s, %s]", money.Dollars(*e.DeltaCILower), money.Dollars(*e.DeltaCIUpper))
		}
		s += ")"
	}
	return s
}

// block prints a titled, indented text.
func block(w io.Writer, title, text string) {
	fmt.Fprintf(w, "      %s:\n", title)
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for _, l := range slices.Clip(lines) {
		fmt.Fprintf(w, "        %s\n", Printable(l))
	}
}

// Printable escapes what a terminal would act on (control characters, C1
// codes, bidirectional overrides) in text from a model or a record, so it
// prints as text.
func Printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
