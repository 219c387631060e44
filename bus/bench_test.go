package bus_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

// BenchmarkIngest measures the whole path: publish (asynchronous, acked by
// the stream) -> durable consumer -> one DuckDB transaction per batch ->
// ack, for 1 KB event records. The clock stops when the persister has
// acked the last record, i.e. when every row is committed.
//
//	go test ./bus -run '^$' -bench Ingest -benchtime 200000x
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchIngest(b, batch, true) })
	}
}

// BenchmarkIngestMemory is BenchmarkIngest with records encoded while
// publishing, so that the peak heap and RSS are those of the bus, the
// server and DuckDB rather than of a pre-built data set. Run it long:
//
//	go test ./bus -run '^$' -bench IngestMemory -benchtime 500000x
func BenchmarkIngestMemory(b *testing.B) { benchIngest(b, 5000, false) }

func benchIngest(b *testing.B, batch int, preEncode bool) {
	ctx := testCtx(b, 10*time.Minute)
	_, _, js := startServer(b, ctx, b.TempDir(), "")
	db := dbIn(b)
	p := startPersister(b, ctx, js, db, bus.PersisterOptions{BatchSize: batch, MaxWait: 50 * time.Millisecond, MaxAckPending: 8 * batch})
	pub := bus.NewPublisher(js, bus.WithMaxInFlight(4096))

	// Records are encoded before the clock starts (that is the runner's
	// work); publishing, consuming and committing are what is measured.
	n := b.N
	const chunk = 10000
	encode := func(from, to int) []*nats.Msg {
		msgs := make([]*nats.Msg, 0, to-from)
		for i := from; i < to; i++ {
			m, err := bus.NewMsg(event("bench-1", int64(i), 1024))
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		return msgs
	}
	var all []*nats.Msg
	if preEncode {
		all = encode(0, n)
	}
	size := len(encode(0, 1)[0].Data)
	var peakHeap atomic.Uint64
	stopSampling := sampleHeap(&peakHeap)

	durable := "persister-" + bus.DBToken(db)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += chunk {
		var msgs []*nats.Msg
		if preEncode {
			msgs = all[i:min(n, i+chunk)]
		} else {
			msgs = encode(i, min(n, i+chunk))
		}
		if err := pub.PublishMsgs(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	published := time.Since(start)
	for {
		// The persister creates its consumer when it starts, maybe later.
		c, err := js.Consumer(ctx, bus.StreamName, durable)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			b.Fatal(err)
		}
		var info *jetstream.ConsumerInfo
		if err == nil {
			if info, err = c.Info(ctx); err != nil {
				b.Fatal(err)
			}
			if info.AckFloor.Stream >= uint64(n) && info.NumAckPending == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("persister did not finish: %+v", info)
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stopSampling()

	counts, err := p.st.Counts(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if counts[schema.TableEvents] != int64(n) {
		b.Fatalf("%d event rows, want %d", counts[schema.TableEvents], n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(n)/published.Seconds(), "published/s")
	b.ReportMetric(float64(n*size)/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MB")
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(rss/(1<<20), "peak-rss-MB")
	}
	b.ReportMetric(0, "ns/op") // per-record time is records/s; ns/op over b.N is noise
}

// sampleHeap records the peak in-use heap until the returned stop is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// peakRSS is the process's peak resident set (VmHWM) in bytes on Linux,
// including DuckDB's and the embedded server's memory.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkWriteBatchOnly is the ceiling BenchmarkIngest can reach: the
// store's WriteBatch alone on the same records, without NATS.
func BenchmarkWriteBatchOnly(b *testing.B) {
	ctx := testCtx(b, 10*time.Minute)
	st, err := store.Open(ctx, dbIn(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const batch = 1000
	msgs := make([]store.Message, batch)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += batch {
		for j := range msgs {
			m, _ := bus.NewMsg(event("wb-1", int64(i+j), 1024))
			msgs[j] = store.Message{Subject: m.Subject, Data: m.Data}
		}
		if _, err := st.WriteBatch(ctx, msgs[:min(batch, b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
