package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler processes one batch of messages. Returning nil acks them
// all; returning an error leaves them unacked, so the stream redelivers
// them. A handler must therefore be idempotent.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) error

// Fatal marks a handler error after which no batch can succeed in this
// process: Consume stops and returns it (the batch is redelivered to the
// next process) instead of retrying forever.
func Fatal(err error) error { return fatalError{err} }

type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

// IsFatal reports whether err was marked with Fatal.
func IsFatal(err error) bool { return errors.As(err, new(fatalError)) }

// ConsumerOptions configures Consume. Zero values take the defaults.
type ConsumerOptions struct {
	// Durable names the consumer; one per database. Required.
	Durable string
	// FilterSubject limits the consumer (default SubjectAll).
	FilterSubject string
	// BatchSize is the most messages per handler call (default 5000,
	// the fastest on a 2-core machine in BenchmarkIngest).
	BatchSize int
	// MaxBatchBytes ends a batch early once its payloads reach this size
	// (default 32 MiB), so large LLM records do not make huge batches.
	MaxBatchBytes int
	// MaxWait is the longest a partial batch waits for more messages before
	// it is handled (default 100ms): the bound on commit latency.
	MaxWait time.Duration
	// AckWait is how long the server waits for an ack before redelivering;
	// it must exceed the slowest handler call (default 2m).
	AckWait time.Duration
	// MaxAckPending caps delivered but unacked messages (default 8 batches).
	MaxAckPending int
	// DrainTimeout bounds the final handler call after ctx ends (default 30s).
	DrainTimeout time.Duration
	// RetryDelay is the redelivery delay after a handler error (default 1s).
	RetryDelay time.Duration
	// Logger receives warnings and errors (default slog.Default()).
	Logger *slog.Logger
}

func (o *ConsumerOptions) defaults() error {
	if o.Durable == "" {
		return errors.New("consumer: a durable name is required")
	}
	if o.FilterSubject == "" {
		o.FilterSubject = SubjectAll
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 32 << 20
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 100 * time.Millisecond
	}
	if o.AckWait <= 0 {
		o.AckWait = 2 * time.Minute
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 8 * o.BatchSize
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// ConsumerConfig is the durable pull consumer Consume creates.
func (o ConsumerOptions) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       o.Durable,
		Description:   "simcash persister",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1, // a batch that failed to commit must be retried, never skipped
		MaxAckPending: o.MaxAckPending,
		FilterSubject: o.FilterSubject,
	}
}

// Consume runs a durable pull consumer on the SIMCASH stream until ctx
// ends. It collects up to BatchSize messages (or what arrived within
// MaxWait of the first), calls h, and acks them all when h returns nil.
// When ctx ends it stops pulling, hands what it already holds to h, acks,
// and returns nil.
func Consume(ctx context.Context, js jetstream.JetStream, o ConsumerOptions, h BatchHandler) error {
	if err := o.defaults(); err != nil {
		return err
	}
	c := &consumer{js: js, o: o, h: h, log: o.Logger}
	backoff := 100 * time.Millisecond
	for {
		err := c.run(ctx)
		if IsFatal(err) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return err // nothing to wait for: the stream must be created first
		}
		// Consumer deleted, connection trouble: set up again.
		c.log.Warn("consumer interrupted; resuming", "durable", o.Durable, "err", err)
		if sleep(ctx, jitter(backoff)) != nil {
			return nil
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

type consumer struct {
	js  jetstream.JetStream
	o   ConsumerOptions
	h   BatchHandler
	log *slog.Logger
}

func (c *consumer) run(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, apiTimeout)
	cons, err := c.js.CreateOrUpdateConsumer(actx, StreamName, c.o.ConsumerConfig())
	cancel()
	if err != nil {
		return fmt.Errorf("create consumer %s on stream %s: %w", c.o.Durable, StreamName, err)
	}
	// At start, what is pending belongs to a crashed predecessor; after an
	// interruption (a server restart), to acks lost on the way. Either
	// way nothing of it is being handled here: have it redelivered now
	// (duplicates are no-ops) rather than after the ack wait.
	c.redeliverOrphans(ctx, cons)
	it, err := cons.Messages(
		// Read ahead two batches while one commits, but never buffer more
		// than 64 MiB (that is still above any message's maximum size).
		jetstream.PullMaxMessagesWithBytesLimit(2*c.o.BatchSize, 64<<20),
		jetstream.PullExpiry(10*time.Second),
		// A pull lost in a reconnect or a leader change is noticed by the
		// missing heartbeats and re-issued.
		jetstream.PullHeartbeat(2*time.Second),
	)
	if err != nil {
		return fmt.Errorf("pull from consumer %s: %w", c.o.Durable, err)
	}
	defer it.Stop()

	// One goroutine blocks in Next, which is what lets the iterator watch
	// heartbeats; the loop below cuts what it delivers into batches.
	msgs := make(chan jetstream.Msg, c.o.BatchSize)
	done := make(chan struct{})
	defer close(done)
	var nextErr error
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				nextErr = err
				return
			}
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	}()

	batch := make([]jetstream.Msg, 0, c.o.BatchSize)
	for {
		batch = batch[:0]
		open, idle := c.fill(ctx, msgs, &batch)
		if idle {
			if err := c.checkStalled(ctx, cons); err != nil {
				return err
			}
			continue
		}
		if ctx.Err() != nil {
			// Shutting down: take what the client already buffered, too,
			// so it is committed now rather than redelivered later.
			it.Drain()
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.DrainTimeout)
			defer cancel()
			drainCtx, stopDrain := context.WithTimeout(dctx, c.o.DrainTimeout/3)
			defer stopDrain()
		drain:
			for {
				select {
				case m, ok := <-msgs:
					if !ok {
						break drain
					}
					batch = append(batch, m)
				case <-drainCtx.Done():
					// Disconnected: what was not handed over is redelivered later.
					it.Stop()
					break drain
				}
			}
			for len(batch) > 0 {
				n := min(len(batch), c.o.BatchSize)
				if err := c.handle(dctx, batch[:n]); err != nil {
					return err
				}
				batch = batch[n:]
			}
			return nil
		}
		if len(batch) > 0 {
			// A commit in progress finishes even if shutdown starts
			// meanwhile; AckWait bounds it anyway.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.AckWait)
			err := c.handle(hctx, batch)
			cancel()
			if err != nil {
				return err
			}
		}
		if !open {
			return fmt.Errorf("next message from consumer %s: %w", c.o.Durable, nextErr)
		}
	}
}

// apiTimeout bounds one JetStream API request: a request that reached a
// server which then died is never answered, and must be retried.
const apiTimeout = 10 * time.Second

// idleCheck is how long the consumer waits for a message before it asks
// the server whether messages are waiting for it.
const idleCheck = 5 * time.Second

// checkStalled returns an error when the server holds messages for this
// consumer but has no pull request from it: the client lost its pull (seen
// after a cluster node failover), and the caller must subscribe again.
func (c *consumer) checkStalled(ctx context.Context, cons jetstream.Consumer) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil {
		return nil // the server is unreachable; nothing to fix from here
	}
	if info.NumPending > 0 && info.NumWaiting == 0 {
		return fmt.Errorf("consumer %s stalled with %d messages pending and no pull request", c.o.Durable, info.NumPending)
	}
	if info.NumAckPending > 0 {
		// Idle, so nothing is being handled here: these acks were lost (a
		// server restart). Have the messages redelivered now; storing
		// them again is a no-op. Otherwise they would wait out AckWait.
		c.redeliverOrphans(ctx, cons)
	}
	return nil
}

// fill appends messages to batch until it is full, MaxWait has passed since
// its first message, or ctx ends. It reports open=false when msgs is
// closed, and idle=true when no message came for idleCheck.
func (c *consumer) fill(ctx context.Context, msgs <-chan jetstream.Msg, batch *[]jetstream.Msg) (open, idle bool) {
	idleTimer := time.NewTimer(idleCheck)
	defer idleTimer.Stop()
	select {
	case m, ok := <-msgs:
		if !ok {
			return false, false
		}
		*batch = append(*batch, m)
	case <-idleTimer.C:
		return true, true
	case <-ctx.Done():
		return true, false
	}
	timer := time.NewTimer(c.o.MaxWait)
	defer timer.Stop()
	size := len((*batch)[0].Data())
	for len(*batch) < c.o.BatchSize && size < c.o.MaxBatchBytes {
		select {
		case m, ok := <-msgs:
			if !ok {
				return false, false
			}
			*batch = append(*batch, m)
			size += len(m.Data())
		case <-timer.C:
			return true, false
		case <-ctx.Done():
			return true, false
		}
	}
	return true, false
}

// handle calls the handler and acks the batch, or schedules its redelivery.
// It returns the handler's error only when it is fatal.
func (c *consumer) handle(ctx context.Context, batch []jetstream.Msg) error {
	if len(batch) == 0 {
		return nil
	}
	if err := c.h(ctx, batch); err != nil {
		if IsFatal(err) {
			// Nak at once: the next process gets the batch without
			// waiting for AckWait.
			for _, m := range batch {
				_ = m.Nak()
			}
			return err
		}
		c.log.Error("batch failed; it will be redelivered", "durable", c.o.Durable, "messages", len(batch), "err", err)
		for _, m := range batch {
			_ = m.NakWithDelay(c.o.RetryDelay) // lost naks fall back to AckWait
		}
		return nil
	}
	for _, m := range batch {
		// A lost ack only means a redelivery, which the handler ignores.
		if err := m.Ack(); err != nil {
			c.log.Debug("ack failed; message will be redelivered", "err", err)
		}
	}
	return nil
}

// redeliverOrphans makes messages delivered to a previous, crashed instance
// of this durable consumer come back at once instead of after AckWait. Only
// one process consumes a durable (it holds the database), so anything
// pending at start belongs to a dead predecessor.
func (c *consumer) redeliverOrphans(ctx context.Context, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	info, err := cons.Info(ctx)
	if err != nil || info.NumAckPending == 0 {
		return
	}
	s, err := c.js.Stream(ctx, StreamName)
	if err != nil {
		return
	}
	if _, err := s.ResetConsumer(ctx, c.o.Durable); err != nil {
		// Older servers lack consumer reset: the messages come back after AckWait.
		c.log.Info("unacked messages will be redelivered after the ack wait", "durable", c.o.Durable, "pending", info.NumAckPending, "ack_wait", c.o.AckWait, "err", err)
		return
	}
	c.log.Info("redelivering unacked messages (a crashed predecessor's, or acks lost in a reconnect)", "durable", c.o.Durable, "pending", info.NumAckPending)
}
