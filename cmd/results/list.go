package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"simcash/store"
)

// ListCommand lists experiments.
type ListCommand struct {
	dbOptions
	Name   string
	Sweep  string
	Status string
	Sort   string
	Limit  int
}

func (c *ListCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List experiments, newest first",
		Args:  args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	c.register(cmd)
	f := cmd.Flags()
	f.StringVar(&c.Name, "name", "", "experiment name (exact, or a glob with * and ?)")
	f.StringVar(&c.Sweep, "sweep", "", "only the runs of this sweep (runner sweep)")
	f.StringVar(&c.Status, "status", "", "running, lost (no sign of life for SIMCASH_LOST_AFTER, default 1m), completed, failed or interrupted")
	f.StringVar(&c.Sort, "sort", "-started_at", "sort key, '-' prefix for descending: "+strings.Join(store.SortKeys, ", "))
	f.IntVar(&c.Limit, "limit", 100, "maximum number of experiments, 0 for all")
	return cmd
}

// Run prints the matching experiments to w.
func (c *ListCommand) Run(ctx context.Context, w io.Writer) error {
	opts := store.ListOptions{Name: c.Name, Sweep: c.Sweep, Status: c.Status, Sort: c.Sort, Limit: c.Limit}
	if err := checkListOptions(opts); err != nil {
		return err
	}
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if opts.Limit > 0 {
		opts.Limit++ // one more, to tell whether the limit cut the list
	}
	list, err := r.List(ctx, opts)
	if err != nil {
		return err
	}
	more := c.Limit > 0 && len(list) > c.Limit
	if more {
		list = list[:c.Limit]
	}
	switch c.Format {
	case "json":
		return writeJSON(w, list)
	case "csv":
		rows := make([][]string, len(list))
		for i, e := range list {
			rows[i] = []string{e.ExperimentID, e.ExperimentName, e.Status, strconv.Itoa(e.NumIterations),
				strconv.FormatBool(e.Converged), e.ConvergenceReason, centsPtr(e.FinalCost), centsPtr(e.BestCost),
				e.StartedAt.UTC().Format(time.RFC3339Nano), rfc3339(e.CompletedAt), e.Model, strconv.FormatInt(e.MasterSeed, 10),
				strconv.FormatInt(e.LLMCalls, 10), strconv.FormatInt(e.PromptTokens, 10), strconv.FormatInt(e.CompletionTokens, 10)}
		}
		return writeCSV(w, []string{"experiment_id", "experiment_name", "status", "num_iterations", "converged",
			"convergence_reason", "final_cost_cents", "best_cost_cents", "started_at", "completed_at", "model",
			"master_seed", "llm_calls", "prompt_tokens", "completion_tokens"}, rows)
	}
	rows := make([][]string, len(list))
	for i, e := range list {
		conv := yesNo(e.Converged)
		if e.ConvergenceReason != "" {
			conv += " (" + e.ConvergenceReason + ")"
		}
		tokens := "-"
		if e.LLMCalls > 0 {
			tokens = strconv.FormatInt(e.PromptTokens+e.CompletionTokens, 10)
		}
		rows[i] = []string{e.ExperimentID, e.ExperimentName, strconv.FormatInt(e.MasterSeed, 10), e.Status,
			strconv.Itoa(e.NumIterations), conv, dollarsPtr(e.FinalCost), dollarsPtr(e.BestCost), tokens, timeStr(e.StartedAt)}
	}
	if err := writeTable(w, []string{"ID", "NAME", "SEED", "STATUS", "ITERS", "CONVERGED", "FINAL", "BEST", "TOKENS", "STARTED (UTC)"}, escapeRows(rows)); err != nil {
		return err
	}
	if more {
		_, err = fmt.Fprintf(w, "(first %d shown; --limit 0 shows all)\n", c.Limit)
	}
	return err
}

// checkListOptions rejects bad flags before the database is opened, so a
// typo is reported as such even when the database is missing.
func checkListOptions(o store.ListOptions) error {
	switch o.Status {
	case "", "running", "lost", "completed", "failed", "interrupted":
	default:
		return usagef("unknown --status %q: use running, lost, completed, failed or interrupted", o.Status)
	}
	key := strings.TrimPrefix(o.Sort, "-")
	known := key == ""
	for _, k := range store.SortKeys {
		known = known || k == key
	}
	if !known {
		return usagef("unknown --sort %q: use one of %s, with '-' for descending", o.Sort, strings.Join(store.SortKeys, ", "))
	}
	if o.Limit < 0 {
		return usagef("--limit %d: use 0 (all) or more", o.Limit)
	}
	return nil
}
