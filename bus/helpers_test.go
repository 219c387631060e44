package bus_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

// testCtx returns a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startServer starts an embedded server in dir, listening on listen ("" =
// in-process only), and returns it with a connection and JetStream
// context on which the stream exists.
func startServer(t testing.TB, ctx context.Context, dir, listen string) (*bus.Embedded, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := startEmbedded(ctx, bus.EmbeddedOptions{Dir: dir, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect(ctx, t.Name())
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	js, err := bus.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	return srv, nc, js
}

// persister runs RunPersister on a fresh database in dir. stop ends it
// and closes the store, returning RunPersister's error.
type persister struct {
	path string
	st   *store.Store
	stop func() error
}

func startPersister(t testing.TB, ctx context.Context, js jetstream.JetStream, dbPath string, o bus.PersisterOptions) *persister {
	t.Helper()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bus.RunPersister(pctx, js, st, o) }()
	p := &persister{path: dbPath, st: st}
	var stopped bool
	var stopErr error
	p.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
			if err := st.Close(); err != nil && stopErr == nil {
				stopErr = err
			}
		}
		return stopErr
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// waitRows polls the store until table holds want rows.
func waitRows(t testing.TB, ctx context.Context, st *store.Store, want map[string]int64) {
	t.Helper()
	var got map[string]int64
	for {
		var err error
		got, err = st.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for k, v := range want {
			if got[k] < v {
				ok = false
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rows: got %v, want at least %v: %v", got, want, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// experiment returns the records of a small experiment: started,
// iterations with an evaluation each, n events in all, completed.
func experiment(id string, iterations, events int, payload int) []schema.Record {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []schema.Record{&schema.ExperimentStarted{
		ExpID: id, Name: "exp", Type: "generic", Config: json.RawMessage(`{"seed":1}`),
		MasterSeed: 1, Scenario: "s", Model: "builtin:search", StartedAt: now,
	}}
	for i := 1; i <= iterations; i++ {
		recs = append(recs,
			&schema.Iteration{ExpID: id, Iteration: i, TotalCost: int64(1000 - i), AgentCosts: map[string]int64{"A": 1},
				Policies: json.RawMessage(`{"A":{}}`), AcceptedChanges: map[string]bool{"A": true}, Timestamp: now},
			&schema.PolicyEvaluation{ExpID: id, Iteration: i, Agent: "A", ProposedPolicy: json.RawMessage(`{}`),
				OldCost: 10, NewCost: 9, Delta: 1, Accepted: true, Reason: "better", NumSamples: 1,
				SampleDetails: json.RawMessage(`[]`), Seed: 7, Timestamp: now})
	}
	for s := 0; s < events; s++ {
		recs = append(recs, event(id, int64(s), payload))
	}
	recs = append(recs, &schema.ExperimentCompleted{ExpID: id, CompletedAt: now, Status: schema.StatusCompleted,
		Converged: true, ConvergenceReason: "stable", NumIterations: iterations, FinalCost: 5, BestCost: 5,
		FinalPolicies: json.RawMessage(`{}`), AgentFinalCosts: map[string]int64{"A": 5}})
	return recs
}

// event returns an event record whose wire form is about payload bytes.
func event(id string, seq int64, payload int) *schema.Event {
	pad := strings.Repeat("x", max(payload-200, 0))
	return &schema.Event{ExpID: id, Seq: seq, Iteration: 1, EventType: "llm_interaction",
		Data: json.RawMessage(fmt.Sprintf(`{"pad":%q}`, pad)), Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// wantCounts is what experiment() leaves in each table.
func wantCounts(experiments, iterations, events int) map[string]int64 {
	return map[string]int64{
		schema.TableExperiments: int64(experiments),
		schema.TableCompletions: int64(experiments),
		schema.TableIterations:  int64(experiments * iterations),
		schema.TableEvaluations: int64(experiments * iterations),
		schema.TableEvents:      int64(experiments * events),
	}
}

// checkCounts fails unless the table counts are exactly want (tables not
// named in want must be empty).
func checkCounts(t testing.TB, got, want map[string]int64) {
	t.Helper()
	for _, tbl := range schema.Tables {
		if tbl == schema.TableMigrations {
			continue
		}
		if got[tbl] != want[tbl] {
			t.Errorf("table %s: %d rows, want %d", tbl, got[tbl], want[tbl])
		}
	}
}

// query opens a closed database file directly and runs q.
func query(t testing.TB, dbPath, q string, args ...any) [][]any {
	t.Helper()
	db, err := sql.Open("duckdb", dbPath+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func dbIn(t testing.TB) string { return filepath.Join(t.TempDir(), "results", "all.db") }

// testToken is the token of servers a test restarts on the same port, so
// that its clients reconnect.
const testToken = "bus-test-token-0123456789abcdef0123"

// startEmbedded is bus.StartEmbedded, or bus.Host when the server listens
// on TCP (which needs credentials).
func startEmbedded(ctx context.Context, o bus.EmbeddedOptions) (*bus.Embedded, error) {
	if o.Listen == "" {
		return bus.StartEmbedded(ctx, o)
	}
	return bus.Host(ctx, o, "")
}
