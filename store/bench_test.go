package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"simcash/schema"
)

// BenchmarkAppenderOnly writes 1 KB event records straight into DuckDB
// through WriteBatch, 1000 per batch, and reports records/s.
func BenchmarkAppenderOnly(b *testing.B) {
	for _, size := range []int{100, 1000} {
		for _, staging := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d/query-appender", size)
			if staging {
				name = fmt.Sprintf("batch=%d/staging", size)
			}
			b.Run(name, func(b *testing.B) { benchWrite(b, size, 1024, staging) })
		}
	}
}

func benchWrite(b *testing.B, batchSize, recordSize int, staging bool) {
	ctx := context.Background()
	s := openTemp(b)
	s.staging = staging
	if _, err := s.WriteBatch(ctx, msgs(b, experiment("bench", "bench", schema.StatusRunning, 0, t0))); err != nil {
		b.Fatal(err)
	}
	// Encode outside the timer: the benchmark measures the store.
	batches := make([][]Message, b.N)
	var bytes int64
	seq := int64(0)
	for i := range batches {
		batches[i] = make([]Message, batchSize)
		for j := range batches[i] {
			seq++
			batches[i][j] = bigEvent(b, "bench", seq, recordSize)
			bytes += int64(len(batches[i][j].Data))
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, err := s.WriteBatch(ctx, batches[i])
		if err != nil {
			b.Fatal(err)
		}
		if res.Inserted != batchSize {
			b.Fatalf("inserted %d of %d", res.Inserted, batchSize)
		}
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/el, "records/s")
	b.ReportMetric(float64(bytes)/el/1e6, "MB/s")
	b.ReportMetric(el/float64(b.N)*1e3, "ms/batch")
}
