package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/spf13/cobra"

	"simcash/bus"
	"simcash/experiment"
	"simcash/scenario"
	"simcash/sim"
	"simcash/store"
)

// rerunCommand repeats a stored run from the config and scenario text
// recorded with it.
type rerunCommand struct {
	run  runCommand
	from string
}

func newRerunCommand() *cobra.Command {
	c := &rerunCommand{}
	cmd := &cobra.Command{
		Use:   "rerun ID",
		Short: "Run a stored experiment again from its recorded config and scenario",
		Long: `Run experiment ID again, exactly as recorded: its resolved config (seed, model,
evaluation, constraints, initial policies) and the scenario file's text are read from
the results database (--from), so neither file needs to exist any more. With the same
optimizer the new run's records equal the old ones apart from ids and times.

Records go to the --from database unless --db or SIMCASH_NATS_URL says otherwise. The
database may be held by a running persister: the run is then read through it.`,
		Args: exactArgs(1, "the id of a stored experiment (see 'results list')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.from, "from", "results/all.db", "results database that holds the run")
	f.StringVar(&c.run.db, "db", "", "DuckDB file to store the new run in (default: --from)")
	f.BoolVar(&c.run.quiet, "quiet", false, "no progress lines")
	c.run.registerModelCalls(f)
	return cmd
}

// Run reads experiment id's recorded config and runs it.
func (c *rerunCommand) Run(ctx context.Context, stdout, stderr io.Writer, id string) error {
	r, closeFn, err := openRecorded(ctx, c.from)
	if err != nil {
		return err
	}
	cfg, scn, _, err := recordedRun(ctx, r, id)
	closeFn()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rerunning %s from %s\n", id, c.from)
	return c.run.execute(ctx, stdout, stderr, cfg, scn, orDefault(c.run.db, c.from))
}

// orDefault returns a unless it is empty, else b.
func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// openRecorded opens the results database at dbPath, or asks the persister
// that holds it.
func openRecorded(ctx context.Context, dbPath string) (store.Reader, func(), error) {
	bc, err := bus.LoadConfig()
	if err != nil {
		return nil, nil, usageError{err}
	}
	r, closeFn, err := bus.OpenReader(ctx, dbPath, bc)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, userErr("no results database at %s: pass --from", dbPath)
	case errors.Is(err, store.ErrNotResultsDB):
		return nil, nil, usageError{err}
	case err != nil:
		return nil, nil, err
	}
	return r, closeFn, nil
}

// recordedRun rebuilds the config and scenario stored with experiment id.
func recordedRun(ctx context.Context, r store.Reader, id string) (*experiment.Config, *sim.Config, *store.ExperimentDetail, error) {
	d, err := r.Show(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, usageError{err}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, err := experiment.FromRecorded(d.Config)
	if err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("experiment %s: %w; run it again from its experiment file", id, err)}
	}
	scn, err := recordedScenario(cfg)
	if err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("experiment %s: %w", id, err)}
	}
	return cfg, scn, d, nil
}

// recordedScenario loads the scenario text recorded in cfg and checks cfg
// against it.
func recordedScenario(cfg *experiment.Config) (*sim.Config, error) {
	scn, warns, err := scenario.LoadBytes(cfg.Scenario, []byte(cfg.ScenarioContent), scenario.Options{})
	if err != nil {
		return nil, fmt.Errorf("recorded scenario: %w", err)
	}
	for _, w := range warns {
		slog.Warn(w.Error())
	}
	ids := make([]string, len(scn.Agents))
	for i, a := range scn.Agents {
		ids[i] = a.ID
	}
	if err := cfg.Validate(ids); err != nil {
		return nil, err
	}
	return scn, nil
}
