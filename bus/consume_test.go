package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
)

// Consume cuts batches by count and by bytes, and a batch whose handler
// fails comes back until it succeeds.
func TestConsumeBatches(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, _, js := startServer(t, ctx, t.TempDir(), "")
	const n, payload, maxBytes = 60, 100_000, 1 << 20
	var recs []schema.Record
	for i := range n {
		recs = append(recs, event("consume-1", int64(i), payload))
	}
	if err := bus.NewPublisher(js).PublishBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		calls   int
		failed  []string
		done    = map[string]bool{}
		maxSeen int
	)
	cctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- bus.Consume(cctx, js, bus.ConsumerOptions{
			Durable: "test", BatchSize: 1000, MaxBatchBytes: maxBytes,
			MaxWait: 50 * time.Millisecond, RetryDelay: 50 * time.Millisecond,
		}, func(_ context.Context, msgs []jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			size := 0
			for _, m := range msgs {
				size += len(m.Data())
			}
			maxSeen = max(maxSeen, size)
			if calls == 1 { // the first commit fails
				for _, m := range msgs {
					failed = append(failed, m.Headers().Get(jetstream.MsgIDHeader))
				}
				return errors.New("disk full")
			}
			for _, m := range msgs {
				done[m.Headers().Get(jetstream.MsgIDHeader)] = true
			}
			return nil
		})
	}()
	waitFor(t, ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(done) == n }, "all %d messages handled", n)
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("Consume after its context ended: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) == 0 {
		t.Fatal("the failing batch was empty")
	}
	for _, id := range failed {
		if !done[id] {
			t.Errorf("%s from the failed batch never came back", id)
		}
	}
	if maxSeen > maxBytes+payload+1000 {
		t.Errorf("a batch held %d bytes, want at most about %d", maxSeen, maxBytes)
	}
	if calls < n*payload/maxBytes {
		t.Errorf("%d handler calls for %d bytes in batches of %d", calls, n*payload, maxBytes)
	}
}

// A fatal handler error ends Consume with that error (a persister then
// exits for its supervisor to restart it) and the batch is not lost: the
// next consumer of the durable gets it at once.
func TestConsumeStopsOnFatal(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, _, js := startServer(t, ctx, t.TempDir(), "")
	if err := bus.NewPublisher(js).PublishBatch(ctx, []schema.Record{event("fatal-1", 1, 100), event("fatal-1", 2, 100)}); err != nil {
		t.Fatal(err)
	}
	o := bus.ConsumerOptions{Durable: "fatal", MaxWait: 20 * time.Millisecond, AckWait: time.Hour}
	invalidated := errors.New("database has been invalidated")
	err := bus.Consume(ctx, js, o, func(context.Context, []jetstream.Msg) error { return bus.Fatal(invalidated) })
	if !errors.Is(err, invalidated) || !bus.IsFatal(err) {
		t.Fatalf("Consume returned %v, want the fatal handler error", err)
	}
	// AckWait is an hour: only the immediate nak brings the batch back now.
	cctx, stop := context.WithCancel(ctx)
	got := 0
	err = bus.Consume(cctx, js, o, func(_ context.Context, msgs []jetstream.Msg) error {
		if got += len(msgs); got >= 2 {
			stop()
		}
		return nil
	})
	if err != nil || got < 2 {
		t.Fatalf("after the fatal error, the next consumer got %d messages (err %v), want 2", got, err)
	}
}
