package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"simcash/experiment"
	"simcash/schema"
	"simcash/store"
)

// resumeCommand continues a stored run that stopped before it ended.
type resumeCommand struct {
	run  runCommand
	from string
}

func newResumeCommand() *cobra.Command {
	c := &resumeCommand{}
	cmd := &cobra.Command{
		Use:   "resume ID",
		Short: "Continue a run that was interrupted or whose process died, from its last stored iteration",
		Long: `Continue run ID, which stopped before its end (results list shows it interrupted,
running or lost: Ctrl-C, a killed process, a dead machine), from its last stored iteration: same
id, policies, optimizer history, convergence state and seeds, rebuilt from its records.
An unfinished iteration is run again and its records, stored once, carry on without
duplicates or gaps. With a deterministic optimizer the result equals a run that never
stopped.

The config and scenario come from the database (--from), which may be held by a running
persister; records go to --from unless --db or SIMCASH_NATS_URL says otherwise. Make sure
the first process is really gone: two processes continuing one run would interleave.`,
		Args: exactArgs(1, "the id of a stored experiment (see 'results list --status lost')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.from, "from", "results/all.db", "results database that holds the run")
	f.StringVar(&c.run.db, "db", "", "DuckDB file to store the records in (default: --from)")
	f.BoolVar(&c.run.quiet, "quiet", false, "no progress lines")
	c.run.registerModelCalls(f)
	return cmd
}

// Run rebuilds run id from its records and continues it.
func (c *resumeCommand) Run(ctx context.Context, stdout, stderr io.Writer, id string) error {
	r, closeFn, err := openRecorded(ctx, c.from)
	if err != nil {
		return err
	}
	cfg, scn, d, err := recordedRun(ctx, r, id)
	var cp *experiment.Checkpoint
	if err == nil {
		cp, err = checkpoint(ctx, r, d)
	}
	closeFn()
	if err != nil {
		return err
	}
	c.run.resume = cp
	fmt.Fprintf(stderr, "resuming %s after iteration %d of %d\n", id, len(cp.Iterations), cfg.Convergence.MaxIterations)
	return c.run.execute(ctx, stdout, stderr, cfg, scn, orDefault(c.run.db, c.from))
}

// checkpoint reads what a resume rebuilds the run from.
func checkpoint(ctx context.Context, r store.Reader, d *store.ExperimentDetail) (*experiment.Checkpoint, error) {
	switch d.Status {
	case schema.StatusRunning, schema.StatusLost, schema.StatusInterrupted:
	default:
		return nil, userErr("run %s has ended (%s): nothing to resume", d.ExperimentID, d.Status)
	}
	its, err := r.Iterations(ctx, d.ExperimentID)
	if err != nil {
		return nil, err
	}
	evs, err := r.Evaluations(ctx, d.ExperimentID, store.EvalFilter{})
	if err != nil {
		return nil, err
	}
	events, err := r.Events(ctx, d.ExperimentID, store.EventFilter{})
	if err != nil {
		return nil, err
	}
	cp := &experiment.Checkpoint{ID: d.ExperimentID, StartedAt: d.StartedAt, Iterations: its, Evaluations: evs, Events: events}
	return cp, nil
}
