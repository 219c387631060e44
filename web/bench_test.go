package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"simcash/schema"
	"simcash/store"
)

// BenchmarkRunPage loads the page of a 50-iteration bootstrap run, and its
// chart, from a database of 10,000 runs, opening the database per request
// as `results serve` does. Target: the page under 300 ms.
func BenchmarkRunPage(b *testing.B) {
	db := filepath.Join(b.TempDir(), "big.db")
	var rs []schema.Record
	for i := range 9999 {
		rs = append(rs, run(fmt.Sprintf("exp2-%05d", i), "exp2", int64(i), 5, true, t0.Add(time.Duration(i)*time.Second))...)
	}
	rs = append(rs, run("exp2-big", "exp2", 1, 50, true, t0)...)
	writeRecords(b, db, rs)
	open := func(ctx context.Context) (store.Reader, func(), error) {
		s, err := store.OpenReadOnly(ctx, db)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
	srv := httptest.NewServer(New(open))
	defer srv.Close()
	for _, c := range []struct{ name, path string }{
		{"page", "/runs/exp2-big"},
		{"chart", "/api/chart.svg?id=exp2-big"},
		{"runs", "/?limit=100"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				resp, err := http.Get(srv.URL + c.path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s: %s", c.path, resp.Status)
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/load")
			b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
		})
	}
}
