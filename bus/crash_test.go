package bus_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
)

// buildPersister compiles cmd/persister into a temporary directory.
func buildPersister(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the persister binary")
	}
	bin := filepath.Join(t.TempDir(), "persister")
	out, err := exec.Command("go", "build", "-o", bin, "simcash/cmd/persister").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/persister: %v\n%s", err, out)
	}
	return bin
}

// The persister process is SIGKILLed at random points, at least 10 times,
// while a publisher keeps publishing, and restarted each time. Afterwards
// every published record is in the database exactly once and nothing was
// dead-lettered.
func TestPersisterCrash(t *testing.T) {
	bin := buildPersister(t)
	ctx := testCtx(t, 2*time.Minute)
	srv, _, js := startServer(t, ctx, t.TempDir(), "127.0.0.1:0")
	db := dbIn(t)
	logs := filepath.Join(t.TempDir(), "persister.log")
	logf, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--db", db, "--nats-url", srv.URL, "--batch", "200", "--max-wait", "20ms", "--log-level", "debug")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	dump := func() {
		if b, err := os.ReadFile(logs); err == nil && len(b) > 0 {
			t.Logf("persister log (tail):\n%s", b[max(0, len(b)-4000):])
		}
	}

	// The publisher: batches of 1 KB events until told to stop.
	var published atomic.Int64
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() {
		pub := bus.NewPublisher(js)
		// About 2,000 records/s: enough to keep every run busy, little
		// enough for the last run to catch up quickly.
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for seq := int64(0); pubCtx.Err() == nil; {
			select {
			case <-tick.C:
			case <-pubCtx.Done():
				continue
			}
			batch := make([]schema.Record, 50)
			for i := range batch {
				batch[i] = event("crash-1", seq, 1024)
				seq++
			}
			if err := pub.PublishBatch(ctx, batch); err != nil {
				pubDone <- err
				return
			}
			published.Store(seq)
		}
		pubDone <- nil
	}()

	durable := "persister-" + bus.DBToken(db)
	consumerInfo := func() *jetstream.ConsumerInfo {
		c, err := js.Consumer(ctx, bus.StreamName, durable)
		if err != nil {
			return nil
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil
		}
		return info
	}
	const kills = 12
	midBatch := 0
	for k := range kills {
		cmd := start()
		// A random point: anywhere from start-up to well into consuming.
		select {
		case <-time.After(time.Duration(rand.N(600)+20) * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		info := consumerInfo()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if info != nil && info.NumAckPending > 0 {
			midBatch++
		}
		var floor uint64
		if info != nil {
			floor = info.AckFloor.Stream
		}
		t.Logf("kill %d: published %d, acked floor %d", k+1, published.Load(), floor)
	}
	stopPub()
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	total := published.Load()
	if midBatch == 0 {
		t.Errorf("no kill hit the persister with unacked messages; the test did not exercise redelivery")
	}
	if info := consumerInfo(); info == nil || info.AckFloor.Stream == 0 {
		t.Fatalf("the persister made no progress between kills; see log")
	}

	// A last run to completion, then a graceful stop.
	cmd := start()
	for {
		info := consumerInfo()
		if info != nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(total) {
			break
		}
		select {
		case <-ctx.Done():
			dump()
			t.Fatalf("persister did not catch up: %+v", info)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		dump()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("persister exited %d on SIGTERM, want 0", ee.ExitCode())
		}
		t.Fatal(err)
	}
	rows := query(t, db, `SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events`)
	if got := rows[0]; got[0].(int64) != total || got[1].(int64) != total || got[2].(int64) != 0 || got[3].(int64) != total-1 {
		dump()
		t.Fatalf("events count/distinct/min/max = %v, want %d records seq 0..%d exactly once", got, total, total-1)
	}
	if n := query(t, db, `SELECT count(*) FROM dead_letters`)[0][0].(int64); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
	t.Logf("%d records, %d kills (%d with unacked messages in flight), all stored exactly once", total, kills, midBatch)
}
