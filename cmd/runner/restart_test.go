package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

// The NATS server is shut down and started again (same port, same store)
// while a runner process is in the middle of an experiment; the runner
// retries its publishes and every record reaches the database once. The
// runner is held at a known point by a model server that answers its first
// request only after the restart.
func TestNATSRestartUnderRunningRunner(t *testing.T) {
	b := binaries(t, "runner")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	natsDir := filepath.Join(dir, "nats")
	srv, err := bus.Host(ctx, bus.EmbeddedOptions{Dir: natsDir, Listen: "127.0.0.1:0", Token: "restart-test-token"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown() }()

	// The persister runs in this process over a reconnecting client.
	db := filepath.Join(dir, "all.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := bus.Connect(ctx, bus.Config{URL: srv.URL, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := bus.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	pctx, stopPersister := context.WithCancel(ctx)
	persisted := make(chan error, 1)
	go func() {
		persisted <- bus.RunPersister(pctx, js, st, bus.PersisterOptions{MaxWait: 20 * time.Millisecond})
	}()

	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	llm := newFakeLLM(t, func(n int) (string, int, int) {
		if n == 0 {
			once.Do(func() { close(arrived) })
			<-release
		}
		return policyAnswer(0.25 - 0.05*float64(n%4)), 100, 20
	})
	exp := llmExperiment(t, dir, llm.srv.URL+"/v1")

	cmd := exec.CommandContext(ctx, b["runner"], "run", exp, "--quiet", "--max-iterations", "3")
	cmd.Dir = dir
	cmd.Env = childEnv("SIMCASH_NATS_URL="+srv.URL, "OPENAI_API_KEY=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatalf("the runner never asked the model:\n%s", stderr.String())
	}
	port := srv.Port
	srv.Shutdown()
	if srv, err = bus.Host(ctx, bus.EmbeddedOptions{Dir: natsDir, Listen: fmt.Sprintf("127.0.0.1:%d", port), Token: "restart-test-token"}, ""); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("runner: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	sum, err := parseSummary(stdout.String())
	if err != nil {
		t.Fatal(err)
	}

	waitConsumed(t, srv.URL, db)
	stopPersister()
	if err := <-persisted; err != nil {
		t.Fatalf("persister: %v", err)
	}
	list, err := st.List(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ExperimentID != sum.id || list[0].Status != schema.StatusCompleted {
		t.Fatalf("stored experiments %+v, want %s completed", list, sum.id)
	}
	iters, err := st.Iterations(ctx, sum.id)
	if err != nil {
		t.Fatal(err)
	}
	if got := iterNumbers(iters); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("iterations %v, want [1 2 3] once each", got)
	}
	events, err := st.Events(ctx, sum.id, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has sequence %d: a record was lost or doubled", i+1, e.Seq)
		}
	}
	if len(events) == 0 || events[len(events)-1].EventType != "experiment_end" {
		t.Fatalf("events end without experiment_end (%d events)", len(events))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
