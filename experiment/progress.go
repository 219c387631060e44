package experiment

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"simcash/money"
)

// Line formats p as `runner run` prints it: one line per iteration, and one
// indented line per agent decision. `results replay` prints the same lines
// from the database.
func (p Progress) Line() string {
	if p.Agent == "" {
		var parts []string
		for _, a := range slices.Sorted(maps.Keys(p.AgentCosts)) {
			parts = append(parts, a+" "+money.Dollars(p.AgentCosts[a]))
		}
		return fmt.Sprintf("iteration %d/%d  cost %s  (%s)", p.Iteration, p.Total, money.Dollars(p.Cost), strings.Join(parts, ", "))
	}
	verdict := "rejected"
	if p.Accepted {
		verdict = "accepted"
	}
	if p.Proposed != nil {
		return fmt.Sprintf("  %-10s %s: %s  proposed %s, keeps %s", p.Agent, verdict, p.Reason, FormatParams(p.Proposed), FormatParams(p.Params))
	}
	return fmt.Sprintf("  %-10s %s: %s  params %s", p.Agent, verdict, p.Reason, FormatParams(p.Params))
}

// FormatParams formats policy parameters as {name=value, ...}, sorted.
func FormatParams(m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%g", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// WriteSummary prints the outcome as `runner run` ends; where says where the
// records went.
func (o *Outcome) WriteSummary(w io.Writer, where string) error {
	conv := "no"
	if o.Converged {
		conv = "yes"
	}
	fmt.Fprintf(w, "experiment   %s\n", o.ExperimentID)
	fmt.Fprintf(w, "status       %s\n", o.Status)
	fmt.Fprintf(w, "iterations   %d\n", o.Iterations)
	fmt.Fprintf(w, "converged    %s (%s)\n", conv, o.Reason)
	fmt.Fprintf(w, "final cost   %s (best %s)\n", money.Dollars(o.FinalCost), money.Dollars(o.BestCost))
	fmt.Fprintf(w, "records      %s\n", where)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "agent\tfinal cost\tparameters")
	for _, a := range slices.Sorted(maps.Keys(o.AgentCosts)) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a, money.Dollars(o.AgentCosts[a]), FormatParams(o.FinalParams[a]))
	}
	return tw.Flush()
}
