package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"simcash/bus"
	"simcash/schema"
)

// MarkCommand records by hand how a run ended.
type MarkCommand struct {
	dbOptions
	Failed bool
	Reason string
}

func (c *MarkCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mark ID --failed --reason TEXT",
		Short: "Record that a running or lost run ended, as a completion record through the bus",
		Long: `Record by hand that run ID ended: a completion record with status failed and the
reason, published through the bus so that it is stored like every other record (through
the persister that holds the database, SIMCASH_NATS_URL, or a local bus). Its final cost,
policies and iteration count are those of its last stored iteration. A run that has
already ended is left as it is.`,
		Example: `  results mark exp2-20261206-131326-6c6f48 --failed --reason "machine lost power"`,
		Args:    args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&c.Failed, "failed", false, "mark the run failed (required)")
	cmd.Flags().StringVar(&c.Reason, "reason", "", "why, for the record (required)")
	return cmd
}

// Run publishes the completion of run id.
func (c *MarkCommand) Run(ctx context.Context, w io.Writer, id string) error {
	if !c.Failed {
		return usagef("say how the run ended: --failed")
	}
	if c.Reason == "" {
		return usagef("say why with --reason")
	}
	if !schema.ValidID(id) {
		return usagef("%q is not an experiment id", id)
	}
	rec, err := c.completion(ctx, id)
	if err != nil {
		return err
	}
	cfg, err := bus.LoadConfig()
	if err != nil {
		return usageErr(err)
	}
	where, err := bus.PublishTo(ctx, c.DB, cfg, rec)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "marked %s failed after %d iterations (%s); record %s\n", id, rec.NumIterations, c.Reason, where)
	return err
}

// completion builds the completion record from the run's last iteration.
func (c *MarkCommand) completion(ctx context.Context, id string) (*schema.ExperimentCompleted, error) {
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	d, err := r.Show(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	if d.Status != schema.StatusRunning && d.Status != schema.StatusLost {
		return nil, usagef("run %s has already ended: %s", id, d.Status)
	}
	its, err := r.Iterations(ctx, id)
	if err != nil {
		return nil, notFound(err)
	}
	now := time.Now().UTC()
	rec := &schema.ExperimentCompleted{ExpID: id, CompletedAt: now, Status: schema.StatusFailed,
		ConvergenceReason: "marked failed: " + c.Reason, NumIterations: len(its), AgentFinalCosts: map[string]int64{},
		FinalPolicies: json.RawMessage("{}"), DurationSeconds: now.Sub(d.StartedAt).Seconds()}
	for k, it := range its {
		if k == 0 || it.TotalCost < rec.BestCost {
			rec.BestCost = it.TotalCost
		}
	}
	if n := len(its); n > 0 {
		last := its[n-1]
		rec.FinalCost, rec.AgentFinalCosts, rec.FinalPolicies = last.TotalCost, last.AgentCosts, last.Policies
	}
	return rec, nil
}
