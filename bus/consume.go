package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler processes one batch of messages. Returning nil acks them
// all; returning an error leaves them unacked, so the stream redelivers
// them. A handler must therefore be idempotent.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg) error

// ConsumerOptions configures Consume. Zero values take the defaults.
type ConsumerOptions struct {
	// Durable names the consumer; one per database. Required.
	Durable string
	// FilterSubject limits the consumer (default SubjectAll).
	FilterSubject string
	// BatchSize is the most messages per handler call (default 1000).
	BatchSize int
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
	// Logger receives a debug line per batch (default slog.Default()).
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
		o.BatchSize = 1000
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
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errSetup) && !c.started {
			return err
		}
		// Consumer deleted, connection trouble: set up again.
		c.log.Warn("consumer interrupted; resuming", "durable", o.Durable, "err", err)
		if sleep(ctx, jitter(backoff)) != nil {
			return nil
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

var errSetup = errors.New("consumer setup")

type consumer struct {
	js      jetstream.JetStream
	o       ConsumerOptions
	h       BatchHandler
	log     *slog.Logger
	started bool
}

func (c *consumer) run(ctx context.Context) error {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, StreamName, c.o.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("%w: create consumer %s on stream %s (does the stream exist?): %w", errSetup, c.o.Durable, StreamName, err)
	}
	if !c.started {
		c.redeliverOrphans(ctx, cons)
	}
	c.started = true
	it, err := cons.Messages(
		jetstream.PullMaxMessages(2*c.o.BatchSize),
		jetstream.PullExpiry(5*time.Second),
	)
	if err != nil {
		return fmt.Errorf("pull from consumer %s: %w", c.o.Durable, err)
	}
	defer it.Stop()

	batch := make([]jetstream.Msg, 0, c.o.BatchSize)
	for {
		batch = batch[:0]
		nextErr := c.fill(ctx, it, &batch)
		if ctx.Err() != nil {
			// Shutting down: take what the client already buffered, too,
			// so it is committed now rather than redelivered later.
			it.Drain()
			for len(batch) < c.o.BatchSize*4 {
				m, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
				if err != nil {
					break
				}
				batch = append(batch, m)
			}
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.DrainTimeout)
			defer cancel()
			c.handle(dctx, batch)
			return nil
		}
		if len(batch) > 0 {
			// A commit in progress finishes even if shutdown starts
			// meanwhile; AckWait bounds it anyway.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.AckWait)
			c.handle(hctx, batch)
			cancel()
		}
		if nextErr != nil {
			return nextErr
		}
	}
}

// fill appends messages to batch until it is full, MaxWait has passed since
// its first message, or ctx ends. It returns an error only when the
// iterator can deliver no more.
func (c *consumer) fill(ctx context.Context, it jetstream.MessagesContext, batch *[]jetstream.Msg) error {
	var deadline time.Time
	for len(*batch) < c.o.BatchSize {
		wait := time.Second // idle: wake up now and then to notice ctx
		if len(*batch) > 0 {
			wait = time.Until(deadline)
			if wait <= 0 {
				return nil
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		m, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		switch {
		case err == nil:
			if len(*batch) == 0 {
				deadline = time.Now().Add(c.o.MaxWait)
			}
			*batch = append(*batch, m)
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			if len(*batch) > 0 {
				return nil
			}
		default:
			return fmt.Errorf("next message from consumer %s: %w", c.o.Durable, err)
		}
	}
	return nil
}

// handle calls the handler and acks the batch, or schedules its redelivery.
func (c *consumer) handle(ctx context.Context, batch []jetstream.Msg) {
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	if err := c.h(ctx, batch); err != nil {
		c.log.Error("batch failed; it will be redelivered", "durable", c.o.Durable, "messages", len(batch), "err", err)
		for _, m := range batch {
			_ = m.NakWithDelay(c.o.RetryDelay) // lost naks fall back to AckWait
		}
		return
	}
	for _, m := range batch {
		// A lost ack only means a redelivery, which the handler ignores.
		if err := m.Ack(); err != nil {
			c.log.Debug("ack failed; message will be redelivered", "err", err)
		}
	}
	c.log.Debug("batch committed", "durable", c.o.Durable, "messages", len(batch), "took", time.Since(start))
}

// redeliverOrphans makes messages delivered to a previous, crashed instance
// of this durable consumer come back at once instead of after AckWait. Only
// one process consumes a durable (it holds the database), so anything
// pending at start belongs to a dead predecessor.
func (c *consumer) redeliverOrphans(ctx context.Context, cons jetstream.Consumer) {
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
	c.log.Info("redelivering messages left unacked by a previous run", "durable", c.o.Durable, "pending", info.NumAckPending)
}
