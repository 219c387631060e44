package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"simcash/schema"
)

// buildExperiments writes n experiments of three iterations each (every
// third still running) through WriteBatch in batches of about 5000 records,
// and returns the number of records.
func buildExperiments(t testing.TB, s *Store, n int) int {
	t.Helper()
	var batch []Message
	total := 0
	flush := func() {
		if _, err := s.WriteBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	statuses := []string{schema.StatusCompleted, schema.StatusFailed, schema.StatusRunning}
	for i := range n {
		rs := experiment(fmt.Sprintf("exp%d-20261125-120000-%06x", i%7, i), fmt.Sprintf("exp%d", i%7),
			statuses[i%3], 3, t0.Add(time.Duration(i)*time.Second))
		batch = append(batch, msgs(t, rs)...)
		total += len(rs)
		if len(batch) >= 5000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return total
}

func TestListScales(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 experiments")
	}
	const n = 10000
	ctx := context.Background()
	s := openTemp(t)
	start := time.Now()
	rows := buildExperiments(t, s, n)
	t.Logf("stored %d experiments (%d records) in %v", n, rows, time.Since(start))

	tests := []struct {
		opts ListOptions
		want int
	}{
		{ListOptions{}, n},
		{ListOptions{Status: "running", Sort: "-num_iterations"}, n / 3},
		{ListOptions{Name: "exp3", Sort: "final_cost", Limit: 50}, 50},
	}
	for _, tt := range tests {
		start := time.Now()
		got, err := s.List(ctx, tt.opts)
		el := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("List(%+v): %d rows in %v", tt.opts, len(got), el)
		if len(got) != tt.want {
			t.Errorf("List(%+v) returned %d rows, want %d", tt.opts, len(got), tt.want)
		}
		if el > time.Second {
			t.Errorf("List(%+v) took %v, want well under 1s", tt.opts, el)
		}
	}
}
