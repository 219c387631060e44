package bus_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/bus"
	"simcash/schema"
	"simcash/store"
)

// Records published through a local bus reach the database exactly once,
// and Stop returns only after all of them are committed.
func TestLocalExactlyOnce(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	dir := t.TempDir()
	db := dbIn(t)
	l, err := bus.StartLocal(ctx, dir, db)
	if err != nil {
		t.Fatal(err)
	}
	const exps, iters, events = 3, 5, 40
	var all []schema.Record
	for e := range exps {
		all = append(all, experiment(fmt.Sprintf("exp-%d", e), iters, events, 300)...)
	}
	// Half one by one, half as a batch: both paths must deliver.
	for _, r := range all[:len(all)/2] {
		if err := l.Publisher.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Publisher.PublishBatch(ctx, all[len(all)/2:]); err != nil {
		t.Fatal(err)
	}
	// Publishing everything again is deduplicated by msg id.
	if err := l.Publisher.PublishBatch(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := query(t, db, `SELECT count(*) FROM events`)[0][0].(int64); n != exps*events {
		t.Fatalf("events: %d rows, want %d", n, exps*events)
	}
	got := map[string]int64{}
	for _, tbl := range schema.Tables {
		got[tbl] = query(t, db, `SELECT count(*) FROM `+tbl)[0][0].(int64)
	}
	checkCounts(t, got, wantCounts(exps, iters, events))
	// The stream deduplicated the second publish: it holds each record once.
	l2, err := bus.StartLocal(ctx, dir, db)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Stop(ctx)
	s, err := l2.JetStream.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(all)) {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, len(all))
	}
}

// A record published twice with the same id is stored once by the stream;
// one delivered twice under different ids (a republish after the duplicate
// window) is stored once by the database.
func TestDuplicatePublish(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	_, _, js := startServer(t, ctx, t.TempDir(), "")
	p := startPersister(t, ctx, js, dbIn(t), bus.PersisterOptions{MaxWait: 10 * time.Millisecond})
	pub := bus.NewPublisher(js)

	r := event("dup-1", 1, 100)
	m, err := bus.NewMsg(r)
	if err != nil {
		t.Fatal(err)
	}
	ack1, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := bus.NewMsg(r)
	ack2, err := js.PublishMsg(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if !ack2.Duplicate || ack2.Sequence != ack1.Sequence {
		t.Fatalf("second publish with the same msg id: ack %+v, want a duplicate of seq %d", ack2, ack1.Sequence)
	}
	// Same record under another id: the stream keeps both, the db one.
	m3, _ := bus.NewMsg(r)
	m3.Header.Set(jetstream.MsgIDHeader, "other-id")
	if err := pub.PublishMsg(ctx, m3); err != nil {
		t.Fatal(err)
	}
	// A marker published last: once it is stored, so are the others.
	if err := pub.Publish(ctx, event("dup-1", 2, 100)); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, p.st, map[string]int64{schema.TableEvents: 2})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	rows := query(t, p.path, `SELECT seq, count(*) FROM events GROUP BY seq ORDER BY seq`)
	if len(rows) != 2 || rows[0][1].(int64) != 1 || rows[1][1].(int64) != 1 {
		t.Fatalf("events per seq: %v, want one row each for seq 1 and 2", rows)
	}
}

// Messages that can never be stored go to dead_letters with a reason; the
// good records around them are stored and nothing blocks the stream.
func TestPoisonMessages(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	_, _, js := startServer(t, ctx, t.TempDir(), "")
	p := startPersister(t, ctx, js, dbIn(t), bus.PersisterOptions{MaxWait: 10 * time.Millisecond})
	pub := bus.NewPublisher(js)

	raw := func(subject, id, data string) *nats.Msg {
		m := nats.NewMsg(subject)
		m.Data = []byte(data)
		m.Header.Set(jetstream.MsgIDHeader, id)
		return m
	}
	good := func(seq int64) *nats.Msg {
		m, err := bus.NewMsg(event("poison-1", seq, 100))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	msgs := []*nats.Msg{
		good(0),
		raw("simcash.poison-1.event.x", "bad-json", `{"v":1,"kind":"event",`),
		good(1),
		raw("simcash.poison-1.event.x", "bad-version", `{"v":99,"kind":"event","experiment_id":"poison-1","key":"5","data":{"seq":5,"event_type":"x"}}`),
		good(2),
		raw("simcash.poison-1.iteration", "no-key", `{"v":1,"kind":"iteration","experiment_id":"poison-1","data":{"total_cost":3}}`),
		good(3),
	}
	// Sent as one batch so good and bad share a transaction.
	if err := pub.PublishMsgs(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, p.st, map[string]int64{schema.TableEvents: 4, schema.TableDeadLetters: 3})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	rows := query(t, p.path, `SELECT subject, reason, raw FROM dead_letters ORDER BY reason`)
	if len(rows) != 3 {
		t.Fatalf("dead letters: %v, want 3", rows)
	}
	var reasons []string
	for _, r := range rows {
		reason := r[1].(string)
		if reason == "" || len(r[2].([]byte)) == 0 {
			t.Errorf("dead letter %v: want a reason and the raw bytes", r)
		}
		reasons = append(reasons, reason)
	}
	all := strings.ToLower(strings.Join(reasons, "|"))
	for _, want := range []string{"malformed", "version", "key"} {
		if !strings.Contains(all, want) {
			t.Errorf("dead letter reasons %q: none mentions %q", reasons, want)
		}
	}
	checkCounts(t, map[string]int64{
		schema.TableEvents:      int64(len(query(t, p.path, `SELECT 1 FROM events`))),
		schema.TableDeadLetters: 3,
	}, map[string]int64{schema.TableEvents: 4, schema.TableDeadLetters: 3})
}

// The persister advertises itself next to the database while it runs and
// removes the file on a clean exit.
func TestPersisterInfoFile(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	srv, _, js := startServer(t, ctx, t.TempDir(), "127.0.0.1:0")
	db := dbIn(t)
	p := startPersister(t, ctx, js, db, bus.PersisterOptions{URL: srv.URL})
	var info bus.PersisterInfo
	for {
		var err error
		if info, err = bus.ReadInfo(db); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("persister info file never appeared: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if info.URL != srv.URL || info.Subject != bus.QuerySubject(db) || info.PID != os.Getpid() {
		t.Fatalf("info %+v: want url %s, subject %s", info, srv.URL, bus.QuerySubject(db))
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bus.InfoFile(db)); !os.IsNotExist(err) {
		t.Fatalf("info file still there after a clean exit: %v", err)
	}
}

// While the persister holds the database, RemoteReader answers the results
// tool's queries through it, including answers larger than one message.
func TestRemoteReader(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	// A small max payload forces the events answer into several chunks.
	srv, err := bus.Host(ctx, bus.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0", MaxPayload: 64 << 10}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := bus.NewJetStream(nc)
	if _, err := bus.EnsureStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	db := dbIn(t)
	p := startPersister(t, ctx, js, db, bus.PersisterOptions{URL: srv.URL, MaxWait: 10 * time.Millisecond})
	const iters, events = 4, 200
	if err := bus.NewPublisher(js).PublishBatch(ctx, experiment("remote-1", iters, events, 1000)); err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, p.st, wantCounts(1, iters, events))

	// The file is locked by this process's store, as by a persister process.
	r, err := bus.OpenRemote(ctx, db, bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	list, err := r.List(ctx, store.ListOptions{})
	if err != nil || len(list) != 1 || list[0].ExperimentID != "remote-1" || list[0].Status != schema.StatusCompleted {
		t.Fatalf("List: %+v, %v", list, err)
	}
	d, err := r.Show(ctx, "remote-1")
	if err != nil || d.ExperimentName != "exp" || d.FinalCost == nil || *d.FinalCost != 5 {
		t.Fatalf("Show: %+v, %v", d, err)
	}
	if _, err := r.Show(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Show of a missing experiment: %v, want store.ErrNotFound", err)
	}
	its, err := r.Iterations(ctx, "remote-1")
	if err != nil || len(its) != iters || its[0].Iteration != 1 {
		t.Fatalf("Iterations: %d rows, %v", len(its), err)
	}
	evs, err := r.Events(ctx, "remote-1", store.EventFilter{})
	if err != nil || len(evs) != events || len(evs[events-1].Data) < 800 {
		t.Fatalf("Events: %d rows, %v", len(evs), err)
	}
	evals, err := r.Evaluations(ctx, "remote-1", store.EvalFilter{Agent: "A"})
	if err != nil || len(evals) != iters {
		t.Fatalf("Evaluations: %d rows, %v", len(evals), err)
	}
	// Once the persister is gone, OpenRemote says so instead of hanging.
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.OpenRemote(ctx, db, bus.Config{}); err == nil {
		t.Fatal("OpenRemote without a persister: no error")
	}
}
