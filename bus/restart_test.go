package bus_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"simcash/bus"
	"simcash/schema"
)

// Restarting the NATS server (same store dir and port) while publishers
// and the persister run loses nothing: publishes are retried with the same
// msg id and the consumer resumes.
func TestServerRestartLosesNothing(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	srv, err := bus.Host(ctx, bus.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:0", Token: testToken}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown() }()
	connect := func(name string) *bus.Publisher {
		nc, err := bus.Connect(ctx, bus.Config{URL: srv.URL, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := bus.NewJetStream(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.EnsureStream(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
		return bus.NewPublisher(js, bus.WithAttemptTimeout(time.Second), bus.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	}
	nc, err := bus.Connect(ctx, bus.Config{URL: srv.URL, Name: "persister"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pjs, _ := bus.NewJetStream(nc)
	if _, err := bus.EnsureStream(ctx, pjs, 1); err != nil {
		t.Fatal(err)
	}
	p := startPersister(t, ctx, pjs, dbIn(t), bus.PersisterOptions{MaxWait: 10 * time.Millisecond})

	// Publishers run until told to stop (between two publishes, so that
	// every record they started was acknowledged).
	const publishers = 3
	var acked atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for w := range publishers {
		pub := connect(fmt.Sprintf("pub-%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 0; !stop.Load(); s++ {
				if err := pub.Publish(ctx, event(fmt.Sprintf("restart-%d", w), int64(s), 200)); err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		}()
	}
	// Restart twice, each time after the publishers made progress.
	at := int64(0)
	for round := range 2 {
		at += 300
		waitFor(t, ctx, func() bool {
			select {
			case err := <-errs:
				t.Fatalf("publisher gave up: %v", err)
			default:
			}
			return acked.Load() >= at
		}, "publishers to reach %d acks", at)
		port := srv.Port
		srv.Shutdown()
		before := acked.Load()
		srv, err = bus.Host(ctx, bus.EmbeddedOptions{Dir: dir, Listen: fmt.Sprintf("127.0.0.1:%d", port), Token: testToken}, "")
		if err != nil {
			t.Fatalf("restart %d: %v", round, err)
		}
		t.Logf("restart %d: server back after %d acks", round, before)
		waitFor(t, ctx, func() bool { return nc.Stats().Reconnects == uint64(round+1) }, "the persister to reconnect")
		at = before
	}
	// Progress after the last restart, then stop.
	at += 300
	waitFor(t, ctx, func() bool { return acked.Load() >= at }, "publishers to reach %d acks", at)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := acked.Load()
	waitRows(t, ctx, p.st, map[string]int64{schema.TableEvents: total})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if n := nc.Stats().Reconnects; n < 2 {
		t.Fatalf("persister reconnected %d times, want 2: the restarts did not happen under load", n)
	}
	rows := query(t, p.path, `SELECT count(*), count(DISTINCT (experiment_id, seq)) FROM events`)
	if rows[0][0].(int64) != total || rows[0][1].(int64) != total {
		t.Fatalf("events: %v rows/distinct, want %d", rows[0], total)
	}
	if n := query(t, p.path, `SELECT count(*) FROM dead_letters`)[0][0].(int64); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t testing.TB, ctx context.Context, cond func() bool, what string, args ...any) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for "+what, args...)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
