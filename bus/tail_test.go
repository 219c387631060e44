package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
)

func TestTailSubject(t *testing.T) {
	for _, c := range []struct{ exp, typ, want string }{
		{"", "", "simcash.*.>"},
		{"e-1", "", "simcash.e-1.>"},
		{"", "iteration", "simcash.*.iteration"},
		{"e-1", "event", "simcash.e-1.event.>"},
		{"", "llm_interaction", "simcash.*.event.llm_interaction"},
	} {
		if got := bus.TailSubject(c.exp, c.typ); got != c.want {
			t.Errorf("TailSubject(%q, %q) = %q, want %q", c.exp, c.typ, got, c.want)
		}
	}
}

// Tail delivers new records matching its filter, in order, and nothing
// else; it stops cleanly when its context ends.
func TestTail(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, _, js := startServer(t, ctx, t.TempDir(), "")
	pub := bus.NewPublisher(js)
	// Stored before the tail starts: not delivered (live only).
	if err := pub.Publish(ctx, event("tail-a", 500, 100)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []string
	var sawOld bool
	tctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.Tail(tctx, js, bus.TailSubject("tail-a", ""), func(m jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m.Subject())
			if r, err := schema.Decode(m.Data()); err == nil {
				if e, ok := r.(*schema.Event); ok && e.Seq == 500 {
					sawOld = true
				}
			}
			return nil
		})
	}()
	// The tail is live once a probe published now reaches it.
	probe := int64(1000)
	waitFor(t, ctx, func() bool {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			return true
		}
		probe++
		if err := pub.Publish(ctx, event("tail-a", probe, 10)); err != nil {
			t.Fatal(err)
		}
		return false
	}, "the tail to see a probe")
	mu.Lock()
	got = nil
	mu.Unlock()

	recs := experiment("tail-a", 2, 3, 10)
	if err := pub.PublishBatch(ctx, experiment("tail-b", 2, 3, 10)); err != nil { // filtered out
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := pub.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(recs) }, "%d records", len(recs))
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Tail returned %v after its context ended, want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if sawOld {
		t.Fatal("the tail delivered a record stored before it started")
	}
	// Late probes may precede the records; compare the tail end.
	got = got[len(got)-len(recs):]
	for i, r := range recs {
		if want := schema.Subject(r); got[i] != want {
			t.Fatalf("record %d: subject %s, want %s (all: %v)", i, got[i], want, got)
		}
	}
}

// EnsureStream creates the stream once; a later call with another replica
// count (a runner without SIMCASH_STREAM_REPLICAS) leaves it as it is.
func TestEnsureStreamKeepsReplicas(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	_, _, js := startServer(t, ctx, t.TempDir(), "") // creates it, R1
	s, err := bus.EnsureStream(ctx, js, 3)
	if err != nil {
		t.Fatalf("EnsureStream on an existing stream with other replicas: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 1 || info.Config.Duplicates != bus.DuplicateWindow || info.Config.Subjects[0] != bus.SubjectAll {
		t.Fatalf("stream config %+v", info.Config)
	}
}
