package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"simcash/bus"
	"simcash/experiment"
	"simcash/sim"
	"simcash/sweep"
)

// sweepCommand publishes the jobs of a sweep.
type sweepCommand struct {
	seeds  string
	models string
	sets   []string
	strict bool
}

func newSweepCommand() *cobra.Command {
	c := &sweepCommand{}
	cmd := &cobra.Command{
		Use:   "sweep EXPERIMENT.yaml",
		Short: "Queue one run per seed, model and config value for 'runner worker' processes on any machine",
		Long: `Expand an experiment over seeds (--seeds), models (--model) and config values (--set)
into one job per combination, publish the jobs to the SIMCASH_JOBS work queue on the bus
(SIMCASH_NATS_URL), and print the sweep id. Start 'runner worker' on as many machines as
you like: each pulls jobs, runs them and stores their records through the persister. A job
whose worker dies is resumed by another; one that keeps failing is recorded as failed.
Each job carries the resolved config and the scenario text: workers need no files.

Follow it with 'results list --sweep ID' and 'results compare --sweep ID --group-by config'.`,
		Example: `  runner sweep testdata/experiments/exp2.yaml --seeds 1-50
  runner sweep exp.yaml --seeds 1-10 --model builtin:search,openai:gpt-4o --set evaluation.num_samples=20,50`,
		Args: exactArgs(1, "one experiment file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.seeds, "seeds", "", "master seeds, e.g. 1-50 or 1,2,7 (default: the file's)")
	f.StringVar(&c.models, "model", "", "optimizers, comma-separated, e.g. builtin:search,openai:gpt-4o")
	f.StringArrayVar(&c.sets, "set", nil, "KEY=V1,V2: sweep a config value too (dotted key of the resolved config); repeatable")
	f.BoolVar(&c.strict, "strict", false, "treat unknown keys in the experiment or scenario as errors")
	return cmd
}

// Run expands and publishes the sweep.
func (c *sweepCommand) Run(ctx context.Context, w io.Writer, path string) error {
	var seeds []int64
	var err error
	if c.seeds != "" {
		if seeds, err = sweep.ParseSeeds(c.seeds); err != nil {
			return usageError{err}
		}
	}
	var models []string
	if c.models != "" {
		models = strings.Split(c.models, ",")
	}
	var sets []sweep.Set
	for _, s := range c.sets {
		set, err := sweep.ParseSet(s)
		if err != nil {
			return usageError{err}
		}
		sets = append(sets, set)
	}
	cfg, _, err := loadExperiment(path, c.strict, nil)
	if err != nil {
		return err
	}
	id := sweep.NewID(cfg.Name, time.Now())
	jobs, err := sweep.Expand(id, cfg.ResolvedJSON(), seeds, models, sets)
	if err != nil {
		return usageError{err}
	}
	// Every job must load as a worker will load it.
	for _, j := range jobs {
		if _, _, err := jobExperiment(j); err != nil {
			return usageError{fmt.Errorf("job %d (%s): %w", j.Index, j.Label, err)}
		}
	}
	bc, err := bus.LoadConfig()
	if err != nil {
		return usageError{err}
	}
	if bc.URL == "" {
		return userErr("a sweep goes to a bus that workers share: set SIMCASH_NATS_URL (e.g. to the URL 'persister --listen' prints)")
	}
	nc, js, err := sweepBus(ctx, bc)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := sweep.Submit(ctx, js, jobs); err != nil {
		return err
	}
	fmt.Fprintf(w, "sweep %s: %d jobs queued on %s\n", id, len(jobs), bc.URL)
	fmt.Fprintf(w, "run them:    SIMCASH_NATS_URL=%s runner worker --concurrency 2   (on any number of machines)\n", bc.URL)
	fmt.Fprintf(w, "follow them: results list --sweep %s\n", id)
	return nil
}

// jobExperiment loads a job's config and scenario as the worker runs them.
func jobExperiment(j sweep.Job) (*experiment.Config, *sim.Config, error) {
	cfg, err := experiment.FromRecorded(j.Config)
	if err != nil {
		return nil, nil, err
	}
	scn, err := recordedScenario(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, scn, nil
}

// sweepBus connects to the bus and makes sure both the record stream and
// the job stream exist.
func sweepBus(ctx context.Context, bc bus.Config) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := bus.Connect(ctx, bc)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", bc.URL, err)
	}
	js, err := bus.NewJetStream(nc)
	if err == nil {
		_, err = bus.EnsureStream(ctx, js, bc.StreamReplicas)
	}
	if err == nil {
		_, err = sweep.EnsureStream(ctx, js, bc.StreamReplicas)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
