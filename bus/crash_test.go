package bus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

var (
	buildOnce   sync.Once
	persisterAt string
	buildErr    error
)

// buildPersister compiles cmd/persister once per test binary.
func buildPersister(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the persister binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "simcash-persister-")
		if err != nil {
			buildErr = err
			return
		}
		tmpDirs = append(tmpDirs, dir)
		persisterAt = filepath.Join(dir, "persister")
		out, err := exec.Command("go", "build", "-o", persisterAt, "simcash/cmd/persister").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/persister: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return persisterAt
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
		// A random point. Even kills: anywhere from start-up on, however
		// slow start-up is. Odd kills: once this run has received messages,
		// so that every other kill interrupts consuming on a busy machine.
		if k%2 == 1 {
			var before uint64
			if info := consumerInfo(); info != nil {
				before = info.Delivered.Stream
			}
			waitFor(t, ctx, func() bool {
				info := consumerInfo()
				return info != nil && info.Delivered.Stream > before
			}, "kill %d: the persister to receive messages", k+1)
		}
		select {
		case <-time.After(time.Duration(rand.N(300)+20) * time.Millisecond):
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

// The persister command: bad flags exit 2 with one line; without a URL it
// hosts NATS on the --listen port, says which URL runners should use,
// advertises itself to results, and exits 0 on SIGTERM, cleaning up.
func TestPersisterCommand(t *testing.T) {
	bin := buildPersister(t)
	for _, args := range [][]string{{}, {"--db", "x.db", "--bogus"}, {"--db", "x.db", "--batch", "0"}, {"--db", "x.db", "--log-level", "loud"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("persister %v: %v, want exit status 2", args, err)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "persister: ") {
			t.Errorf("persister %v printed %q, want one line \"persister: ...\"", args, out)
		}
	}

	ctx := testCtx(t, time.Minute)
	db := dbIn(t)
	cmd := exec.Command(bin, "--db", db, "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var url string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export SIMCASH_NATS_URL="); ok {
			url = u
			break
		}
	}
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("no export SIMCASH_NATS_URL line with a loopback URL (got %q); stderr:\n%s", url, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	nc, err := bus.Connect(ctx, bus.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := bus.NewJetStream(nc)
	if err := bus.NewPublisher(js).PublishBatch(ctx, experiment("cmd-1", 2, 10, 100)); err != nil {
		t.Fatal(err)
	}
	// While it runs, results reach it through the info file.
	var r *bus.RemoteReader
	waitFor(t, ctx, func() bool {
		r, err = bus.OpenRemote(ctx, db, bus.Config{})
		return err == nil
	}, "the persister to answer queries")
	waitFor(t, ctx, func() bool {
		evs, err := r.Events(ctx, "cmd-1", store.EventFilter{})
		return err == nil && len(evs) == 10
	}, "10 events through the persister")
	r.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("persister on SIGTERM: %v, want exit 0; stderr:\n%s", err, stderr.String())
	}
	if _, err := os.Stat(bus.InfoFile(db)); !os.IsNotExist(err) {
		t.Errorf("info file left after a clean exit: %v", err)
	}
	if _, err := os.Stat(db + ".jetstream"); err != nil {
		t.Errorf("no JetStream directory next to the database: %v", err)
	}
	if n := query(t, db, `SELECT count(*) FROM events`)[0][0].(int64); n != 10 {
		t.Errorf("%d events in the database, want 10", n)
	}
}
