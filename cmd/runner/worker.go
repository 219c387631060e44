package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"simcash/buildinfo"
	"simcash/bus"
	"simcash/experiment"
	"simcash/schema"
	"simcash/sweep"
)

// workerCommand runs sweep jobs from the bus.
type workerCommand struct {
	concurrency   int
	ackWait       time.Duration
	maxDeliveries int
	modelCalls    int
}

func newWorkerCommand() *cobra.Command {
	c := &workerCommand{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run sweep jobs from the bus (SIMCASH_NATS_URL) until stopped",
		Long: `Pull jobs queued by 'runner sweep' from the bus (SIMCASH_NATS_URL), run them
(--concurrency at a time), publish their records for the persister, and ack each job once
its run has ended. While a job runs its lease is renewed; if this process dies the job
goes to another worker after --ack-wait, which resumes the run from its records on the
bus. A job that fails --max-deliveries times is recorded as failed with the reason.
SIGINT/SIGTERM stops taking jobs and hands the running ones back to the queue.`,
		Example: `  SIMCASH_NATS_URL=nats://10.0.0.5:4222 runner worker --concurrency 4`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.concurrency, "concurrency", 1, "jobs run at once")
	f.DurationVar(&c.ackWait, "ack-wait", 30*time.Second, "how long a job of a silent worker waits before it goes to another (set by the first worker)")
	f.IntVar(&c.maxDeliveries, "max-deliveries", 3, "deliveries before a failing job is recorded failed (set by the first worker)")
	f.IntVar(&c.modelCalls, "model-calls", 0, "optimizer calls in flight per job (default: every optimized agent at once)")
	return cmd
}

// Run serves jobs until ctx ends.
func (c *workerCommand) Run(ctx context.Context) error {
	if c.concurrency < 1 || c.maxDeliveries < 1 || c.ackWait < time.Second {
		return userErr("--concurrency and --max-deliveries must be 1 or more, --ack-wait at least 1s")
	}
	bc, err := bus.LoadConfig()
	if err != nil {
		return usageError{err}
	}
	if bc.URL == "" {
		return userErr("a worker takes its jobs from a bus: set SIMCASH_NATS_URL")
	}
	bc.Name = "simcash-worker"
	nc, js, err := sweepBus(ctx, bc)
	if err != nil {
		return err
	}
	defer nc.Drain()
	beat, err := heartbeatInterval()
	if err != nil {
		return err
	}
	pub := bus.NewPublisher(js)
	defer pub.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w := &sweep.Worker{JS: js, Concurrency: c.concurrency, AckWait: c.ackWait, MaxDeliver: c.maxDeliveries, Logger: log,
		Run: func(ctx context.Context, job sweep.Job) error {
			return c.runJob(ctx, js, pub, job, beat, log)
		},
		Fail: func(ctx context.Context, job sweep.Job, reason string) error {
			return failJob(ctx, pub, job, reason)
		},
	}
	fmt.Fprintf(os.Stderr, "worker: taking jobs from %s, %d at a time\n", bc.URL, c.concurrency)
	return w.Serve(ctx)
}

// runJob runs (or resumes) one job's run to its end.
func (c *workerCommand) runJob(ctx context.Context, js jetstream.JetStream, pub *bus.Publisher, job sweep.Job, beat time.Duration, log *slog.Logger) error {
	cfg, scn, err := jobExperiment(job)
	if err != nil {
		return err
	}
	recs, err := bus.ReadRun(ctx, js, job.RunID)
	if err != nil {
		return err
	}
	cp, done := experiment.CheckpointFrom(job.RunID, recs)
	if done != nil {
		log.Info("worker: the job's run has ended already", "run", job.RunID, "status", done.Status)
		return nil
	}
	opt, err := newOptimizer(cfg)
	if err != nil {
		return err
	}
	calls := c.modelCalls
	if calls == 0 {
		calls = len(cfg.OptimizedAgents)
	}
	r := &experiment.Runner{Config: cfg, Scenario: scn, Optimizer: opt, Sink: pub, ID: job.RunID, SweepID: job.SweepID,
		Version: buildinfo.Version(version), Commit: buildinfo.Commit(), HeartbeatEvery: beat, ModelCalls: calls,
		OpenOnCancel: true, Logger: log}
	if !cp.StartedAt.IsZero() {
		r.Resume = cp
		log.Info(fmt.Sprintf("worker: resuming %s after iteration %d", job.RunID, len(cp.Iterations)))
	}
	out, err := r.Run(ctx)
	if err == nil && out.Status != schema.StatusCompleted {
		err = errors.New(out.Reason)
	}
	return err
}

// failJob records a job's run as failed for good: its start (if it never
// started) and a completion with the reason.
func failJob(ctx context.Context, pub *bus.Publisher, job sweep.Job, reason string) error {
	var c struct {
		Name       string `json:"name"`
		MasterSeed int64  `json:"master_seed"`
		Scenario   string `json:"scenario"`
		LLM        struct {
			Model string `json:"model"`
		} `json:"llm"`
	}
	_ = json.Unmarshal(job.Config, &c)
	if c.Name == "" {
		c.Name = "sweep"
	}
	now := time.Now().UTC()
	host, _ := os.Hostname()
	started := &schema.ExperimentStarted{ExpID: job.RunID, Name: c.Name, Type: "generic", Config: job.Config, MasterSeed: c.MasterSeed,
		Scenario: c.Scenario, Model: c.LLM.Model, StartedAt: now, ProgramVersion: buildinfo.Version(version),
		ProgramCommit: buildinfo.Commit(), Host: host, SweepID: job.SweepID}
	if err := pub.Publish(ctx, started); err != nil {
		return err
	}
	return pub.Publish(ctx, &schema.ExperimentCompleted{ExpID: job.RunID, CompletedAt: now, Status: schema.StatusFailed,
		ConvergenceReason: reason, AgentFinalCosts: map[string]int64{}, FinalPolicies: json.RawMessage("{}")})
}
