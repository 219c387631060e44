package bus_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
)

// BenchmarkPersisterRSS runs the persister as its own process against a
// NATS server hosted by the benchmark, publishes b.N 1 KB records in four
// quarters, waits after each quarter until everything is committed, and
// reads the persister's peak resident memory (VmHWM) then. Memory is flat
// when the peak after the last quarter is no higher than after the second.
//
//	go test ./bus -run '^$' -bench PersisterRSS -benchtime 1000000x
func BenchmarkPersisterRSS(b *testing.B) {
	bin := buildPersister(b)
	ctx := testCtx(b, 30*time.Minute)
	srv, _, js := startServer(b, ctx, b.TempDir(), "127.0.0.1:0")
	db := dbIn(b)
	cmd := exec.Command(bin, "--db", db, "--nats-url", srv.URL, "--log-level", "warn")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	pub := bus.NewPublisher(js, bus.WithMaxInFlight(4096))
	durable := "persister-" + bus.DBToken(db)
	n := b.N
	const chunk = 10000
	var peaks [4]float64
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for q := range 4 {
		end := n * (q + 1) / 4
		for sent < end {
			to := min(end, sent+chunk)
			msgs := make([]*nats.Msg, 0, to-sent)
			for i := sent; i < to; i++ {
				m, err := bus.NewMsg(event("rss-1", int64(i), 1024))
				if err != nil {
					b.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			if err := pub.PublishMsgs(ctx, msgs); err != nil {
				b.Fatal(err)
			}
			sent = to
		}
		waitAcked(b, ctx, js, durable, uint64(sent))
		hwm, err := procKB(cmd.Process.Pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		peaks[q] = hwm / 1024
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	for q, p := range peaks {
		b.ReportMetric(p, fmt.Sprintf("peak-rss-MB-q%d", q+1))
	}
	b.ReportMetric(0, "ns/op")
}

// waitAcked polls the persister's durable consumer until every record up
// to stream sequence seq is acked.
func waitAcked(b *testing.B, ctx context.Context, js jetstream.JetStream, durable string, seq uint64) {
	b.Helper()
	for {
		if c, err := js.Consumer(ctx, bus.StreamName, durable); err == nil {
			if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("persister did not commit up to %d in time", seq)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// procKB reads a "Key:   N kB" line of /proc/PID/status.
func procKB(pid int, key string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			return strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", key, pid)
}
