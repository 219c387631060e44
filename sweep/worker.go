package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RunFunc runs a job to its end, publishing its records; resuming says the
// run has records on the bus already (an earlier worker started it).
type RunFunc func(ctx context.Context, job Job) error

// FailFunc records that a job's run failed for good, with the reason.
type FailFunc func(ctx context.Context, job Job, reason string) error

// Worker pulls jobs and runs them, Concurrency at a time.
type Worker struct {
	JS          jetstream.JetStream
	Run         RunFunc
	Fail        FailFunc
	Concurrency int           // default 1
	AckWait     time.Duration // how long a silent job keeps its lease (default 30s); renewed every third of it
	MaxDeliver  int           // deliveries before a failing job is recorded failed (default 3)
	Logger      *slog.Logger
}

// Serve runs jobs until ctx ends; jobs in progress then go back to the
// queue for another worker.
func (w *Worker) Serve(ctx context.Context) error {
	if w.Concurrency <= 0 {
		w.Concurrency = 1
	}
	if w.AckWait <= 0 {
		w.AckWait = 30 * time.Second
	}
	if w.MaxDeliver <= 0 {
		w.MaxDeliver = 3
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	cons, err := w.JS.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.AckWait,
		MaxDeliver: w.MaxDeliver, FilterSubject: SubjectPrefix + ".>", MaxAckPending: -1,
	})
	if err != nil {
		return fmt.Errorf("worker: consumer %s on %s: %w", ConsumerName, StreamName, err)
	}
	var wg sync.WaitGroup
	for range w.Concurrency {
		wg.Go(func() { w.loop(ctx, cons) })
	}
	wg.Wait()
	return nil
}

func (w *Worker) loop(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() == nil {
				w.Logger.Warn("worker: fetch failed; retrying", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			w.handle(ctx, m)
		}
	}
}

// handle runs one delivery of a job and settles the message.
func (w *Worker) handle(ctx context.Context, m jetstream.Msg) {
	job, err := DecodeJob(m.Data())
	if err != nil {
		w.Logger.Error("worker: dropping a job that cannot be read", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	delivery := uint64(1)
	if md, err := m.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	log := w.Logger.With("sweep", job.SweepID, "job", job.Index, "run", job.RunID, "delivery", delivery)
	log.Info("worker: job started", "label", job.Label)

	// Keep the lease while the job runs: a model call can take minutes.
	jctx, stop := context.WithCancel(ctx)
	var keep sync.WaitGroup
	keep.Go(func() {
		t := time.NewTicker(w.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	})
	err = w.Run(jctx, job)
	stop()
	keep.Wait()
	switch {
	case err == nil:
		if err := m.DoubleAck(context.WithoutCancel(ctx)); err != nil {
			log.Warn("worker: ack failed; the job may run again (it resumes and stores nothing twice)", "err", err)
		}
		log.Info("worker: job done")
	case ctx.Err() != nil:
		// Shutting down: let another worker take it at once.
		_ = m.Nak()
	case int(delivery) >= w.MaxDeliver:
		reason := fmt.Sprintf("failed on %d deliveries, last: %v", delivery, err)
		log.Error("worker: job failed for good", "err", err)
		if ferr := w.Fail(context.WithoutCancel(ctx), job, reason); ferr != nil {
			log.Error("worker: could not record the failure", "err", ferr)
		}
		_ = m.Term()
	default:
		log.Warn("worker: job failed; it will be delivered again", "err", err)
		_ = m.NakWithDelay(time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
