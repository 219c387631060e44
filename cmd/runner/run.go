package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"simcash/buildinfo"
	"simcash/bus"
	"simcash/experiment"
	"simcash/llm"
	"simcash/optimizer"
	"simcash/optimizer/llmopt"
	"simcash/optimizer/search"
	"simcash/scenario"
	"simcash/schema"
	"simcash/sim"
)

// runCommand runs an experiment and persists its records.
type runCommand struct {
	seed          int64
	model         string
	maxIterations int
	db            string
	dryRun        bool
	strict        bool
	quiet         bool
	// resume, when set, continues that stored run (runner resume).
	resume *experiment.Checkpoint
	// modelCalls bounds optimizer calls in flight; 0 asks every agent of
	// an iteration at once.
	modelCalls int
}

func newRunCommand() *cobra.Command {
	c := &runCommand{}
	cmd := &cobra.Command{
		Use:   "run EXPERIMENT.yaml",
		Short: "Optimize the banks' policies in an experiment and store every record",
		Long: `Run an experiment: evaluate the policies, ask the optimizer for better ones,
accept or reject them, until convergence or max_iterations.

Where records go:
  SIMCASH_NATS_URL set     publish to that NATS server or cluster (a persister stores them)
  otherwise                an embedded NATS server and persister in this process write
                           output.directory/output.database (or --db PATH)
  no output section        nothing is persisted (the summary is still printed)
  --dry-run                nothing is persisted; without the model's API key, the
                           configuration is only checked (as SimCash's --dry-run does)

The optimizer is llm.model: builtin:search (offline), openai:MODEL, anthropic:MODEL,
google:MODEL, or any OpenAI-compatible server with llm.base_url. API keys come from
OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY. Ctrl-C stops cleanly and records
the run as interrupted.`,
		Args: exactArgs(1, "one experiment file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var seed *int64
			if cmd.Flags().Changed("seed") {
				seed = &c.seed
			}
			return c.Run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], seed)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&c.seed, "seed", 0, "master seed (default: the file's master_seed, else 42)")
	f.StringVar(&c.model, "model", "", "optimizer as provider:model, e.g. builtin:search or openai:gpt-4o")
	f.IntVar(&c.maxIterations, "max-iterations", 0, "stop after N iterations")
	f.StringVar(&c.db, "db", "", "DuckDB file to store results in (overrides output.*)")
	f.BoolVar(&c.dryRun, "dry-run", false, "run without persisting anything (only check the configuration when the API key is missing)")
	f.BoolVar(&c.strict, "strict", false, "treat unknown keys in the experiment or scenario as errors")
	f.BoolVar(&c.quiet, "quiet", false, "no progress lines")
	c.registerModelCalls(f)
	return cmd
}

// registerModelCalls adds --model-calls.
func (c *runCommand) registerModelCalls(f *pflag.FlagSet) {
	f.IntVar(&c.modelCalls, "model-calls", 0, "optimizer calls in flight at once (default: every optimized agent of an iteration; 1: one at a time). Records do not depend on it")
}

// loadExperiment loads an experiment file and its scenario and checks them
// against each other. Every error is the user's.
func loadExperiment(path string, strict bool, o *experiment.Overrides) (*experiment.Config, *sim.Config, error) {
	cfg, warns, err := experiment.Load(path, experiment.LoadOptions{Strict: strict})
	if err != nil {
		return nil, nil, usageError{err}
	}
	for _, w := range warns {
		slog.Warn(w.String())
	}
	if o != nil {
		if err := cfg.ApplyOverrides(*o); err != nil {
			return nil, nil, usageError{err}
		}
	}
	// The text recorded with the run is the text simulated.
	scn, swarns, err := scenario.LoadBytes(cfg.ScenarioPath, []byte(cfg.ScenarioContent), scenario.Options{Strict: strict})
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("scenario of %s: %w", path, err)}
	}
	for _, w := range swarns {
		slog.Warn(w.Error())
	}
	ids := make([]string, len(scn.Agents))
	for i, a := range scn.Agents {
		ids[i] = a.ID
	}
	if err := cfg.Validate(ids); err != nil {
		return nil, nil, usageError{err}
	}
	return cfg, scn, nil
}

func newOptimizer(cfg *experiment.Config) (optimizer.Optimizer, error) {
	l := cfg.LLM
	if l.Provider == "builtin" {
		if l.ModelName != "search" {
			return nil, userErr("llm.model %q: the built-in optimizer is builtin:search", l.Model)
		}
		return search.New(), nil
	}
	client, err := llm.New(llm.Config{
		Provider: l.Provider, Model: l.ModelName, BaseURL: l.BaseURL,
		Timeout: time.Duration(l.TimeoutSeconds * float64(time.Second)), MaxTransportRetries: 5,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return llmopt.New(client, llmopt.Config{
		Model: l.ModelName, Temperature: l.Temperature, MaxTokens: l.MaxTokens,
		ReasoningEffort: l.ReasoningEffort, ThinkingBudget: l.ThinkingBudget, SystemPrompt: l.SystemPrompt,
	}), nil
}

// Run runs the experiment at path.
func (c *runCommand) Run(ctx context.Context, stdout, stderr io.Writer, path string, seed *int64) error {
	if c.maxIterations < 0 {
		return userErr("--max-iterations must be positive")
	}
	if c.modelCalls < 0 {
		return userErr("--model-calls must be 1 or more (0: every agent at once)")
	}
	cfg, scn, err := loadExperiment(path, c.strict, &experiment.Overrides{Seed: seed, Model: c.model, MaxIterations: c.maxIterations, DB: c.db})
	if err != nil {
		return err
	}
	return c.execute(ctx, stdout, stderr, cfg, scn, "")
}

// execute runs a loaded experiment; db, when set, is where records go
// instead of the config's output section.
func (c *runCommand) execute(ctx context.Context, stdout, stderr io.Writer, cfg *experiment.Config, scn *sim.Config, db string) error {
	opt, err := newOptimizer(cfg)
	if err != nil && c.dryRun && errors.Is(err, llm.ErrNoAPIKey) {
		// The reference's --dry-run only checks the configuration; without
		// a key that is all ours can do too.
		fmt.Fprintf(stdout, "configuration valid: experiment %q, optimizer %s, mode %s, up to %d iterations, agents %v\n"+
			"dry run stopped before running: %s\n",
			cfg.Name, cfg.LLM.Model, cfg.Evaluation.Mode, cfg.Convergence.MaxIterations, cfg.OptimizedAgents, keyHint(err))
		return nil
	}
	if err != nil {
		return err
	}
	sink, where, closeSink, err := c.openSink(ctx, cfg, db)
	if err != nil {
		return err
	}
	beat, err := heartbeatInterval()
	if err != nil {
		return err
	}
	r := &experiment.Runner{Config: cfg, Scenario: scn, Optimizer: opt, Sink: sink,
		Version: buildinfo.Version(version), Commit: buildinfo.Commit(), HeartbeatEvery: beat, Resume: c.resume,
		ModelCalls: c.modelCalls}
	if r.ModelCalls == 0 {
		r.ModelCalls = len(cfg.OptimizedAgents)
	}
	if !c.quiet {
		r.Progress = progressPrinter(stderr)
	}
	fmt.Fprintf(stderr, "running %s (%s, %s, up to %d iterations); records: %s\n", cfg.Name, cfg.Evaluation.Mode, cfg.LLM.Model, cfg.Convergence.MaxIterations, where)
	out, runErr := r.Run(ctx)
	closeErr := closeSink()
	if out != nil {
		out.WriteSummary(stdout, where)
	}
	if out != nil && out.Status == schema.StatusInterrupted {
		if from := orDefault(db, cfg.DatabasePath()); from != "" {
			fmt.Fprintf(stderr, "interrupted: continue it with\n  runner resume %s --from %s\n", out.ExperimentID, from)
		}
		return interrupted{runErr}
	}
	if runErr != nil {
		return runErr
	}
	return closeErr
}

// interrupted is a run stopped by SIGINT/SIGTERM: exit status 130.
type interrupted struct{ err error }

func (e interrupted) Error() string { return "run interrupted" }
func (e interrupted) Unwrap() error { return e.err }

// openSink decides where records go (see the command's help).
func (c *runCommand) openSink(ctx context.Context, cfg *experiment.Config, db string) (experiment.Sink, string, func() error, error) {
	none := func() error { return nil }
	if c.dryRun {
		return experiment.Discard{}, "not persisted (--dry-run)", none, nil
	}
	bc, err := bus.LoadConfig()
	if err != nil {
		return nil, "", nil, usageError{err}
	}
	if bc.URL != "" {
		nc, err := bus.Connect(ctx, bc)
		if err != nil {
			return nil, "", nil, fmt.Errorf("connect to %s: %w", bc.URL, err)
		}
		js, err := bus.NewJetStream(nc)
		if err != nil {
			nc.Close()
			return nil, "", nil, err
		}
		if _, err := bus.EnsureStream(ctx, js, bc.StreamReplicas); err != nil {
			nc.Close()
			return nil, "", nil, err
		}
		var pe struct {
			// How long a publish may keep failing because the stream
			// cannot store (full disk, stream limit) before the run fails.
			StoreTimeout time.Duration `envconfig:"PUBLISH_STORE_TIMEOUT" default:"2m"`
		}
		if err := envconfig.Process("SIMCASH", &pe); err != nil {
			nc.Close()
			return nil, "", nil, usageError{err}
		}
		p := bus.NewPublisher(js, bus.WithStoreTimeout(pe.StoreTimeout))
		return p, "published to " + bc.URL, func() error { p.Close(); return nc.Drain() }, nil
	}
	if db == "" && !cfg.HasOutput {
		return experiment.Discard{}, "not persisted (the experiment has no output section)", none, nil
	}
	if db == "" {
		db = cfg.DatabasePath()
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		return nil, "", nil, fmt.Errorf("create output directory: %w", err)
	}
	dir := filepath.Join(filepath.Dir(db), "."+filepath.Base(db)+".nats")
	local, err := bus.StartLocal(ctx, dir, db)
	if err != nil {
		return nil, "", nil, err
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := local.Stop(sctx); err != nil {
			// The stream directory keeps what was not committed; the next
			// run on this database commits it.
			return fmt.Errorf("%w (uncommitted records are kept in %s)", err, dir)
		}
		// Everything is in the database: the stream copy is no longer needed.
		return os.RemoveAll(dir)
	}
	return local.Publisher, db, stop, nil
}

func progressPrinter(w io.Writer) func(experiment.Progress) {
	return func(p experiment.Progress) { fmt.Fprintln(w, p.Line()) }
}

// heartbeatInterval is SIMCASH_HEARTBEAT_INTERVAL (default 10s; 0 turns
// heartbeats off).
func heartbeatInterval() (time.Duration, error) {
	var e struct {
		Interval time.Duration `envconfig:"HEARTBEAT_INTERVAL" default:"10s"`
	}
	if err := envconfig.Process("SIMCASH", &e); err != nil {
		return 0, usageError{err}
	}
	return e.Interval, nil
}
