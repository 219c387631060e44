package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/schema"
)

// Publisher publishes records to the SIMCASH stream and waits for the
// stream to store them. It never drops a record silently: transient
// failures (timeouts, no responders while a server restarts, lost
// connections) are retried with backoff, reusing the message id so that the
// stream stores the record once, until the caller's context ends.
type Publisher struct {
	js  jetstream.JetStream
	o   publisherOptions
	log *slog.Logger
}

type publisherOptions struct {
	attemptTimeout time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	maxInFlight    int
	storeTimeout   time.Duration
}

// DefaultStoreTimeout is how long a publish keeps retrying while the
// stream cannot store (full disk, stream at its byte limit) before it
// fails with the server's reason.
const DefaultStoreTimeout = 2 * time.Minute

// WithStoreTimeout sets how long a publish retries a stream that cannot
// store before failing (default DefaultStoreTimeout,
// SIMCASH_PUBLISH_STORE_TIMEOUT for the runner).
func WithStoreTimeout(d time.Duration) PublisherOpt {
	return func(o *publisherOptions) {
		if d > 0 {
			o.storeTimeout = d
		}
	}
}

// ErrCannotStore is returned when the stream kept refusing to store a
// record for the store timeout; the message carries the server's reason.
var ErrCannotStore = errors.New("the NATS stream cannot store records")

// storageError reports a refusal that lasts until space is freed: a full
// disk under the server's store or the stream at its limits (the server
// says "insufficient resources" or "maximum bytes/messages exceeded").
func storageError(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "insufficient resources") || strings.Contains(s, "maximum bytes") ||
		strings.Contains(s, "maximum messages") || strings.Contains(s, "no space") || strings.Contains(s, "store failed")
}

// storeWatch tracks how long storage refusals have lasted.
type storeWatch struct {
	since   time.Time
	timeout time.Duration
	log     *slog.Logger
}

// check records err; it returns a final error once storage refusals have
// lasted the timeout, and warns (once) when they start.
func (w *storeWatch) check(subject string, err error) error {
	if err == nil || !storageError(err) {
		w.since = time.Time{}
		return nil
	}
	if w.since.IsZero() {
		w.since = time.Now()
		w.log.Warn("the NATS stream refuses to store; retrying", "subject", subject, "reason", err.Error(), "gives_up_after", w.timeout)
		return nil
	}
	if time.Since(w.since) >= w.timeout {
		return fmt.Errorf("%w: %v (for %s; free space under the NATS store, or raise the stream's limits SIMCASH_STREAM_MAX_BYTES / SIMCASH_STREAM_MAX_AGE)", ErrCannotStore, err, w.timeout.Round(time.Second))
	}
	return nil
}

// PublisherOpt configures a Publisher.
type PublisherOpt func(*publisherOptions)

// WithAttemptTimeout bounds the wait for one stream ack before the publish
// is retried (default 5s).
func WithAttemptTimeout(d time.Duration) PublisherOpt {
	return func(o *publisherOptions) { o.attemptTimeout = d }
}

// WithBackoff sets the retry backoff range (default 50ms doubling to 2s).
func WithBackoff(min, max time.Duration) PublisherOpt {
	return func(o *publisherOptions) { o.minBackoff, o.maxBackoff = min, max }
}

// WithMaxInFlight caps the unacknowledged messages of PublishBatch
// (default 4096).
func WithMaxInFlight(n int) PublisherOpt {
	return func(o *publisherOptions) { o.maxInFlight = n }
}

// NewPublisher returns a Publisher on js. The stream must exist (see
// EnsureStream).
func NewPublisher(js jetstream.JetStream, opts ...PublisherOpt) *Publisher {
	o := publisherOptions{
		attemptTimeout: 5 * time.Second,
		minBackoff:     50 * time.Millisecond,
		maxBackoff:     2 * time.Second,
		maxInFlight:    4096,
		storeTimeout:   DefaultStoreTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &Publisher{js: js, o: o, log: slog.Default()}
}

// Publish encodes r and publishes it on schema.Subject(r) with Nats-Msg-Id
// schema.MsgID(r), returning once the stream has stored it (or already had
// it). It retries until ctx ends; an invalid record fails at once.
func (p *Publisher) Publish(ctx context.Context, r schema.Record) error {
	m, err := NewMsg(r)
	if err != nil {
		return err
	}
	return p.PublishMsg(ctx, m)
}

// NewMsg encodes r as the NATS message Publish sends.
func NewMsg(r schema.Record) (*nats.Msg, error) {
	data, err := schema.Encode(r)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	m := nats.NewMsg(schema.Subject(r))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, schema.MsgID(r))
	m.Header.Set(HeaderSchemaVersion, strconv.Itoa(schema.Version))
	return m, nil
}

// PublishMsg publishes a prepared message (subject, data, Nats-Msg-Id
// header) with the same guarantees as Publish. It lets tests and tools send
// raw bytes.
func (p *Publisher) PublishMsg(ctx context.Context, m *nats.Msg) error {
	backoff := p.o.minBackoff
	watch := storeWatch{timeout: p.o.storeTimeout, log: p.log}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.o.attemptTimeout)
		_, err := p.js.PublishMsg(actx, m, jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			return nil
		}
		if ferr := watch.check(m.Subject, err); ferr != nil {
			return fmt.Errorf("publish %s: %w", m.Subject, ferr)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish %s: gave up after %d attempts: %w (last error: %v)", m.Subject, attempt, context.Cause(ctx), err)
		}
		if !retryable(err) {
			return fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		p.log.Debug("publish failed; retrying", "subject", m.Subject, "attempt", attempt, "err", err)
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return fmt.Errorf("publish %s: gave up after %d attempts: %w", m.Subject, attempt, err)
		}
		backoff = min(backoff*2, p.o.maxBackoff)
	}
}

// PublishBatch publishes many records asynchronously and returns once the
// stream has acknowledged all of them, retrying failed ones like Publish.
// It is much faster than Publish in a loop because it does not wait for one
// ack before sending the next record.
func (p *Publisher) PublishBatch(ctx context.Context, recs []schema.Record) error {
	msgs := make([]*nats.Msg, len(recs))
	for i, r := range recs {
		m, err := NewMsg(r)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	return p.PublishMsgs(ctx, msgs)
}

// PublishMsgs is PublishBatch for prepared messages.
func (p *Publisher) PublishMsgs(ctx context.Context, msgs []*nats.Msg) error {
	type pending struct {
		m   *nats.Msg
		ack jetstream.PubAckFuture
	}
	todo := msgs
	backoff := p.o.minBackoff
	watch := storeWatch{timeout: p.o.storeTimeout, log: p.log}
	for attempt := 1; len(todo) > 0; attempt++ {
		var failed []*nats.Msg
		var lastErr error
		inflight := make([]pending, 0, min(len(todo), p.o.maxInFlight))
		// wait collects acks of the in-flight window.
		wait := func() error {
			timer := time.NewTimer(p.o.attemptTimeout)
			defer timer.Stop()
			for _, pf := range inflight {
				select {
				case <-pf.ack.Ok():
				case err := <-pf.ack.Err():
					if !retryable(err) {
						return fmt.Errorf("publish %s: %w", pf.m.Subject, err)
					}
					lastErr = err
					failed = append(failed, pf.m)
				case <-timer.C:
					lastErr = context.DeadlineExceeded
					failed = append(failed, pf.m)
				case <-ctx.Done():
					return fmt.Errorf("publish: %d records not acknowledged: %w", len(todo), context.Cause(ctx))
				}
			}
			inflight = inflight[:0]
			return nil
		}
		for _, m := range todo {
			// A message object can be published asynchronously only once
			// at a time; copy so a retry does not race a late ack.
			mc := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}
			f, err := p.js.PublishMsgAsync(mc, jetstream.WithRetryAttempts(0))
			if err != nil {
				if !retryable(err) {
					return fmt.Errorf("publish %s: %w", m.Subject, err)
				}
				lastErr = err
				failed = append(failed, m)
				continue
			}
			inflight = append(inflight, pending{m, f})
			if len(inflight) >= p.o.maxInFlight {
				if err := wait(); err != nil {
					return err
				}
			}
		}
		if err := wait(); err != nil {
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		if lastErr != nil && len(failed) > 0 {
			if ferr := watch.check(failed[0].Subject, lastErr); ferr != nil {
				return fmt.Errorf("publish: %d records not stored: %w", len(failed), ferr)
			}
		}
		p.log.Debug("batch publish: retrying unacknowledged records", "count", len(failed), "attempt", attempt, "err", lastErr)
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return fmt.Errorf("publish: %d records not acknowledged after %d attempts: %w (last error: %v)", len(failed), attempt, err, lastErr)
		}
		backoff = min(backoff*2, p.o.maxBackoff)
		todo = failed
	}
	return nil
}

// Close waits briefly for outstanding asynchronous acks. Publish and
// PublishBatch already wait for theirs, so Close never loses records.
func (p *Publisher) Close() {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(time.Second):
	}
}

// retryable reports whether a publish error may go away by itself: the
// server is restarting, a leader is being elected, the connection is being
// re-established. Errors about the message itself are final.
func retryable(err error) bool {
	if storageError(err) {
		return true // until space returns, or the store timeout
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrInvalidOption):
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// Stream-side rejections of this message (wrong last sequence,
		// message too large, ...) will repeat; cluster errors
		// (no quorum, leader changes: 5xx/503) will not.
		return apiErr.Code >= 500
	}
	return true
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
