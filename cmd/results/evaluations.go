package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"simcash/store"
)

// EvaluationsCommand prints an experiment's policy evaluations.
type EvaluationsCommand struct {
	dbOptions
	Agent     string
	Iteration int
}

func (c *EvaluationsCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evaluations ID",
		Short: "Show an experiment's policy evaluations: old and new cost, delta, accepted",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&c.Agent, "agent", "", "only this agent's evaluations")
	cmd.Flags().IntVar(&c.Iteration, "iteration", 0, "only this iteration (0: all)")
	return cmd
}

// Run prints the policy evaluations of experiment id to w.
func (c *EvaluationsCommand) Run(ctx context.Context, w io.Writer, id string) error {
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	evs, err := r.Evaluations(ctx, id, store.EvalFilter{Agent: c.Agent, Iteration: c.Iteration})
	if err != nil {
		return notFound(err)
	}
	switch c.Format {
	case "json":
		return writeJSON(w, evs)
	case "csv":
		rows := make([][]string, len(evs))
		for i, e := range evs {
			rows[i] = []string{strconv.Itoa(e.Iteration), e.Agent, strconv.FormatInt(e.OldCost, 10),
				strconv.FormatInt(e.NewCost, 10), strconv.FormatInt(e.Delta, 10), strconv.FormatBool(e.Accepted),
				e.Reason, strconv.Itoa(e.NumSamples), strconv.FormatInt(e.Seed, 10),
				e.Timestamp.UTC().Format(time.RFC3339Nano), string(e.ProposedPolicy), e.ReasonCode, e.EvaluationMode,
				centsPtr(e.MeanDelta), centsPtr(e.DeltaStdDev), centsPtr(e.DeltaCILower), centsPtr(e.DeltaCIUpper)}
		}
		return writeCSV(w, []string{"iteration", "agent_id", "old_cost_cents", "new_cost_cents", "delta_cents",
			"accepted", "reason", "num_samples", "seed", "timestamp", "proposed_policy", "reason_code", "evaluation_mode",
			"mean_delta_cents", "delta_sd_cents", "delta_ci95_lower_cents", "delta_ci95_upper_cents"}, rows)
	}
	rows := make([][]string, len(evs))
	for i, e := range evs {
		ci := "-"
		if e.DeltaCILower != nil && e.DeltaCIUpper != nil {
			ci = "[" + dollars(*e.DeltaCILower) + ", " + dollars(*e.DeltaCIUpper) + "]"
		}
		rows[i] = []string{strconv.Itoa(e.Iteration), e.Agent, dollars(e.OldCost), dollars(e.NewCost),
			dollars(e.Delta), yesNo(e.Accepted), strconv.Itoa(e.NumSamples), ci, e.ReasonCode, clip(e.Reason, 60)}
	}
	return writeTable(w, []string{"ITER", "AGENT", "OLD", "NEW", "DELTA", "ACCEPTED", "SAMPLES", "DELTA 95% CI", "CODE", "REASON"}, escapeRows(rows))
}
