package analysis

import (
	"fmt"
	"strconv"
	"strings"

	"simcash/money"
	"simcash/schema"
)

// Describe is a one-line account of a record for people (`results tail`,
// the dashboard's live feed): what it is and its money in dollars. The
// second value is its kind, or its event type for events.
func Describe(r schema.Record) (kind, summary string) {
	kind = string(r.Kind())
	switch r := r.(type) {
	case *schema.ExperimentStarted:
		summary = fmt.Sprintf("%s: scenario %s, model %s, seed %d", r.Name, r.Scenario, r.Model, r.MasterSeed)
	case *schema.Iteration:
		summary = fmt.Sprintf("iteration %d: total cost %s", r.Iteration, money.Dollars(r.TotalCost))
	case *schema.PolicyEvaluation:
		summary = fmt.Sprintf("iteration %d agent %s: %s -> %s, %s", r.Iteration, r.Agent, money.Dollars(r.OldCost),
			money.Dollars(r.NewCost), Verdict(r.Accepted))
	case *schema.Event:
		kind = r.EventType
		summary = "#" + strconv.FormatInt(r.Seq, 10) + " iteration " + strconv.Itoa(r.Iteration) + ": " + clip(string(r.Data), 70)
	case *schema.Heartbeat:
		summary = fmt.Sprintf("alive in iteration %d (beat %d)", r.Iteration, r.Beat)
	case *schema.ExperimentCompleted:
		summary = fmt.Sprintf("%s after %d iterations: final %s, best %s", r.Status, r.NumIterations,
			money.Dollars(r.FinalCost), money.Dollars(r.BestCost))
	}
	return kind, Printable(summary)
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
