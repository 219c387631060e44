package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"simcash/analysis"
	"simcash/store"
)

// ReplayCommand prints a stored run as it ran.
type ReplayCommand struct {
	dbOptions
	Iterations string
	Agent      string
	Audit      bool
}

func (c *ReplayCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay ID",
		Short: "Print a stored run as `runner run` printed it; --audit adds every prompt, answer and decision",
		Long: `Print run ID from the database as 'runner run' printed it while it ran: a line per
iteration with its costs, a line per agent decision, then the summary. --audit adds, per
iteration and agent, the optimizer's system and user prompts, its raw answer, the parsed
policy, validation errors, tokens and latency, and the decision with its statistics.`,
		Example: `  results replay exp2-20261206-130102-6a20a5
  results replay exp2-20261206-130102-6a20a5 --iterations 3:7 --agent BANK_A --audit`,
		Args: args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	f := cmd.Flags()
	f.StringVar(&c.Iterations, "iterations", "", "only these iterations, FROM:TO (e.g. 3:7, 5:, :4)")
	f.StringVar(&c.Agent, "agent", "", "only this agent's decisions")
	f.BoolVar(&c.Audit, "audit", false, "add prompts, answers, parsed policies, validation errors, tokens, latency and statistics")
	return cmd
}

// Run prints the replay of run id.
func (c *ReplayCommand) Run(ctx context.Context, w io.Writer, id string) error {
	from, to, err := iterRange(c.Iterations)
	if err != nil {
		return err
	}
	if c.Format != "table" {
		return usagef("replay prints text only; use `results events`, `iterations` or `evaluations` with --format %s", c.Format)
	}
	run, r, closeFn, err := c.loadRun(ctx, id)
	if err != nil {
		return err
	}
	defer closeFn()
	o := analysis.ReplayOptions{From: from, To: to, Agent: c.Agent, Audit: c.Audit, Where: c.DB}
	if c.Audit {
		if o.Events, err = r.Events(ctx, id, store.EventFilter{}); err != nil {
			return analysisErr(err)
		}
	}
	return analysisErr(analysis.Replay(w, run, o))
}
