package bus_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"simcash/bus"
	"simcash/store"
)

// persisterPeakRSS is the stated bound on the persister's peak resident
// memory while it works through oversized and junk messages: DuckDB's
// memory_limit (512 MB) would be reached long before it with unbounded
// batches of 7 MiB records, which drove the persister to 2-3 GB.
const persisterPeakRSS = 400 << 20

// TestLargeRecordsDoNotWedgePersister publishes what once drove the
// persister out of memory and invalidated its database (issue 8, break 1):
// 100 valid 7 MiB records (under the server's 8 MiB payload limit) and 500
// junk messages of 1 MiB. The persister, a real process on a NATS server
// hosted by the test, must dead-letter all of them with a bounded prefix,
// store a small record published after them within a deadline, and keep
// its peak RSS under persisterPeakRSS.
func TestLargeRecordsDoNotWedgePersister(t *testing.T) {
	bin := buildPersister(t)
	ctx := testCtx(t, 10*time.Minute)
	srv, _, js := startServer(t, ctx, t.TempDir(), "127.0.0.1:0")
	db := dbIn(t)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--db", db, "--nats-url", srv.URL, "--log-level", "warn")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	const big, junk = 100, 500
	for i := range big {
		m, err := bus.NewMsg(event("big-1", int64(i), 7<<20))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish 7 MiB record %d: %v", i, err)
		}
	}
	for i := range junk {
		raw := make([]byte, 1<<20)
		_, _ = rand.Read(raw)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "simcash.junk-1.event", Data: raw}); err != nil {
			t.Fatalf("publish junk %d: %v", i, err)
		}
	}
	small, err := bus.NewMsg(event("small-1", 1, 300))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, small)
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	durable := "persister-" + bus.DBToken(db)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := js.Consumer(ctx, bus.StreamName, durable)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= ack.Sequence {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("persister exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the small record was not committed within 5 minutes of being published; stderr:\n%s", stderr.String())
		}
	}
	took := time.Since(published)
	hwm, err := procKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("small record committed %v after publication (behind %d x 7 MiB and %d x 1 MiB); persister peak RSS %.0f MB",
		took.Round(time.Millisecond), big, junk, hwm/1024)
	if hwm*1024 > persisterPeakRSS {
		t.Errorf("persister peak RSS %.0f MB, over the %d MB bound", hwm/1024, persisterPeakRSS>>20)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("persister on SIGTERM: %v\n%s", err, stderr.String())
	}
	exited <- nil

	if n := query(t, db, `SELECT count(*) FROM events WHERE experiment_id = 'small-1'`)[0][0].(int64); n != 1 {
		t.Fatalf("small record stored %d times, want once", n)
	}
	rows := query(t, db, `SELECT count(*), max(octet_length(raw)), min(raw_bytes), sum(CASE WHEN reason LIKE '%limit%' THEN 1 ELSE 0 END) FROM dead_letters`)
	n, maxKept, minSize, overSize := rows[0][0].(int64), rows[0][1].(int64), rows[0][2].(int64), rows[0][3]
	if n != big+junk || maxKept > store.DeadLetterPrefix || minSize < 1<<20 {
		t.Errorf("dead letters: %d (want %d), largest kept prefix %d bytes (at most %d), smallest size %d", n, big+junk, maxKept, store.DeadLetterPrefix, minSize)
	}
	if !strings.Contains(stderr.String(), "dead letters stored") {
		t.Errorf("no warning about dead letters; stderr:\n%s", stderr.String())
	}
	if lines := strings.Count(stderr.String(), "\n"); lines > 200 {
		t.Errorf("%d log lines for %d dead letters: want one per batch", lines, big+junk)
	}
	if overSize != float64(big) && overSize != int64(big) && fmt.Sprint(overSize) != fmt.Sprint(big) {
		t.Errorf("%v dead letters name the size limit, want the %d records over schema.MaxRecordBytes", overSize, big)
	}
}
