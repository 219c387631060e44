package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"simcash/schema"
)

func counts(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	c, err := s.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWriteBatchIdempotent(t *testing.T) {
	for _, staging := range []bool{false, true} {
		t.Run(fmt.Sprintf("staging=%v", staging), func(t *testing.T) {
			s := openTemp(t)
			s.staging = staging
			testIdempotent(t, s)
		})
	}
}

func testIdempotent(t *testing.T, s *Store) {
	ctx := context.Background()
	batch := msgs(t, experiment("e1", "exp1", schema.StatusCompleted, 3, t0))
	res, err := s.WriteBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != len(batch) || res.Inserted != len(batch) || res.DeadLetters != 0 {
		t.Errorf("first write: %+v, want %d records all inserted", res, len(batch))
	}
	want := map[string]int64{"experiments": 1, "experiment_completions": 1, "iterations": 3,
		"policy_evaluations": 6, "events": 3, "dead_letters": 0, "heartbeats": 0, "conflicts": 0, "schema_migrations": int64(len(schema.Migrations))}
	if got := counts(t, s); !equalCounts(got, want) {
		t.Fatalf("counts after first write = %v, want %v", got, want)
	}

	// Redelivery of the whole batch, plus duplicates within one batch.
	res, err = s.WriteBatch(ctx, append(batch, batch...))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 0 || res.Records != 2*len(batch) {
		t.Errorf("redelivery: %+v, want 0 inserted of %d", res, 2*len(batch))
	}
	if got := counts(t, s); !equalCounts(got, want) {
		t.Errorf("counts after redelivery = %v, want %v", got, want)
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestWriteBatchDeadLetters(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	good := msgs(t, experiment("e1", "exp1", schema.StatusRunning, 1, t0))
	bad := []struct {
		subject, data string
		want          error
	}{
		{"simcash.e1.iteration", `{"v":1,"kind":"iteration"`, schema.ErrMalformed},
		{"simcash.e1.iteration", `{"v":7,"kind":"iteration","experiment_id":"e1","key":"9","data":{"iteration":9}}`, schema.ErrUnknownVersion},
		{"simcash.e1.iteration", `{"v":1,"kind":"iteration","experiment_id":"e1","data":{"iteration":9}}`, schema.ErrMissingKey},
		{"simcash.e1.event.x", "{\"v\":1,\"kind\":\"event\",\"experiment_id\":\"e1\",\"key\":\"9\",\"data\":{\"seq\":9,\"event_type\":\"x\",\"data\":\"\xff\"}}", schema.ErrMalformed},
		{"simcash.e1.iteration", `{"v":1,"kind":"iteration","experiment_id":"e1","key":"3000000000","data":{"iteration":3000000000}}`, schema.ErrInvalid},
		// A valid record of e1 published on another experiment's subject.
		{"simcash.hostile-1.iteration", `{"v":1,"kind":"iteration","experiment_id":"e1","key":"9","data":{"iteration":9,"total_cost":1,"timestamp":"2026-01-01T00:00:00Z"}}`, schema.ErrInvalid},
	}
	batch := append([]Message{}, good[:2]...)
	for _, b := range bad {
		batch = append(batch, Message{Subject: b.subject, Data: []byte(b.data)})
	}
	batch = append(batch, good[2:]...)
	res, err := s.WriteBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadLetters != len(bad) || res.Inserted != len(good) {
		t.Errorf("result %+v, want %d dead letters and %d inserted", res, len(bad), len(good))
	}
	// The bad messages' reasons and bytes are kept; a redelivery adds nothing.
	if _, err := s.WriteBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT subject, reason, raw FROM dead_letters`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var subj, reason string
		var raw []byte
		if err := rows.Scan(&subj, &reason, &raw); err != nil {
			t.Fatal(err)
		}
		got[string(raw)] = reason
	}
	if len(got) != len(bad) {
		t.Fatalf("dead_letters has %d distinct rows, want %d: %v", len(got), len(bad), got)
	}
	for _, b := range bad {
		reason, ok := got[b.data]
		if !ok {
			t.Errorf("dead letter %q not stored with its raw bytes", b.data)
			continue
		}
		r, decodeErr := decode([]byte(b.data))
		if decodeErr == nil && schema.Subject(r) != b.subject {
			if !strings.Contains(reason, "published on "+b.subject) {
				t.Errorf("reason %q, want the subject mismatch", reason)
			}
			continue
		}
		if decodeErr == nil {
			_, decodeErr = rowFor(mustDecode(t, b.data))
		}
		if !errors.Is(decodeErr, b.want) || reason != decodeErr.Error() {
			t.Errorf("reason %q, want the %v error %v", reason, b.want, decodeErr)
		}
	}
	if c := counts(t, s); c["dead_letters"] != int64(len(bad)) || c["iterations"] != 1 || c["events"] != 1 || c["policy_evaluations"] != 2 {
		t.Errorf("counts %v", c)
	}
}

func mustDecode(t *testing.T, s string) schema.Record {
	r, err := schema.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestJSONColumnsAreObjects(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.WriteBatch(ctx, msgs(t, experiment("e1", "exp1", schema.StatusCompleted, 2, t0))); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ query, want string }{
		{`SELECT json_type(config) FROM experiments`, "OBJECT"},
		{`SELECT json_extract(config, '$.master_seed')::INTEGER::VARCHAR FROM experiments`, "42"},
		{`SELECT json_extract(agent_costs, '$.BANK_B')::BIGINT::VARCHAR FROM iterations WHERE iteration = 2`, "1200"},
		{`SELECT json_extract(accepted_changes, '$.BANK_A')::VARCHAR FROM iterations WHERE iteration = 2`, "true"},
		{`SELECT json_extract(policies, '$.BANK_A.parameters.initial_liquidity_fraction')::DOUBLE::VARCHAR FROM iterations WHERE iteration = 2`, "0.25"},
		{`SELECT json_type(sample_details) FROM policy_evaluations LIMIT 1`, "ARRAY"},
		{`SELECT json_extract(proposed_policy, '$.parameters.initial_liquidity_fraction')::DOUBLE::VARCHAR FROM policy_evaluations LIMIT 1`, "0.25"},
		{`SELECT json_extract(data, '$.iteration')::INTEGER::VARCHAR FROM events WHERE seq = 2`, "2"},
		{`SELECT json_type(final_policies) FROM experiment_completions`, "OBJECT"},
		{`SELECT json_extract(agent_final_costs, '$.BANK_A')::BIGINT::VARCHAR FROM experiment_completions`, "400"},
	}
	for _, tt := range tests {
		var got string
		if err := s.db.QueryRowContext(ctx, tt.query).Scan(&got); err != nil {
			t.Errorf("%s: %v", tt.query, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestWriteBatchAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	batch := append(msgs(t, experiment("e1", "exp1", schema.StatusCompleted, 2, t0)),
		Message{Subject: "simcash.x", Data: []byte("not json")})
	s.beforeCommit = func() error { return errors.New("disk full") }
	if _, err := s.WriteBatch(ctx, batch); err == nil {
		t.Fatal("WriteBatch succeeded although the commit was refused")
	}
	for table, n := range counts(t, s) {
		if table != schema.TableMigrations && n != 0 {
			t.Errorf("%s has %d rows after a failed batch, want 0", table, n)
		}
	}
	s.beforeCommit = nil
	res, err := s.WriteBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != len(batch)-1 || res.DeadLetters != 1 {
		t.Errorf("retry after failure: %+v", res)
	}
}

func TestWriteBatchCancelled(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WriteBatch(ctx, msgs(t, experiment("e1", "exp1", schema.StatusRunning, 1, t0))); err == nil {
		t.Fatal("WriteBatch with a cancelled context succeeded")
	}
	if n := counts(t, s)["experiments"]; n != 0 {
		t.Errorf("experiments = %d after cancelled batch", n)
	}
}

// TestWriteBatchLargeOverlap spans several appender chunks (2048 rows) and
// checks that Inserted counts only new rows when a batch half overlaps.
func TestWriteBatchLargeOverlap(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	var batch []Message
	for i := range 7500 {
		batch = append(batch, bigEvent(t, "e1", int64(i), 100))
	}
	tests := []struct {
		msgs         []Message
		wantInserted int
		wantRows     int64
	}{
		{batch[:5000], 5000, 5000},
		{batch[:5000], 0, 5000},
		{batch[2500:], 2500, 7500},
	}
	for i, tt := range tests {
		res, err := s.WriteBatch(ctx, tt.msgs)
		if err != nil {
			t.Fatal(err)
		}
		if res.Inserted != tt.wantInserted || res.Records != len(tt.msgs) {
			t.Errorf("batch %d: %+v, want %d inserted of %d", i, res, tt.wantInserted, len(tt.msgs))
		}
		if n := counts(t, s)["events"]; n != tt.wantRows {
			t.Errorf("batch %d: %d events stored, want %d", i, n, tt.wantRows)
		}
	}
}

// TestReadWhileWriting reads through the Store while batches are committed,
// as the persister does when it answers queries.
func TestReadWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	const n = 40
	done := make(chan error, 1)
	go func() {
		for i := range n {
			id := fmt.Sprintf("e%d", i)
			if _, err := s.WriteBatch(ctx, msgs(t, experiment(id, "exp", schema.StatusCompleted, 2, t0))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	last := 0
	for {
		l, err := s.List(ctx, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l) < last {
			t.Fatalf("List went from %d to %d experiments", last, len(l))
		}
		last = len(l)
		for _, e := range l {
			// A batch is atomic: a visible experiment has its completion.
			if e.Status != schema.StatusCompleted || e.NumIterations != 2 {
				t.Fatalf("half-written experiment visible: %+v", e)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if l, _ := s.List(ctx, ListOptions{}); len(l) != n {
				t.Fatalf("after writing: %d experiments, want %d", len(l), n)
			}
			return
		default:
		}
	}
}

// TestWriteBatchIsolatesRejectedRecord makes DuckDB itself reject one record
// (a CHECK constraint stands in for any database-side refusal) and expects
// that record dead-lettered while the rest of the batch is stored.
func TestWriteBatchIsolatesRejectedRecord(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.db.ExecContext(ctx, `DROP TABLE events; CREATE TABLE events (
		experiment_id VARCHAR NOT NULL, seq BIGINT NOT NULL CHECK (seq <> 13), iteration INTEGER NOT NULL,
		event_type VARCHAR NOT NULL, data JSON, timestamp TIMESTAMPTZ NOT NULL, record_sha256 VARCHAR, PRIMARY KEY (experiment_id, seq))`); err != nil {
		t.Fatal(err)
	}
	batch := msgs(t, experiment("e1", "exp1", schema.StatusCompleted, 2, t0))
	for i := range 40 {
		batch = append(batch, bigEvent(t, "e1", int64(100+i), 200))
	}
	poison := bigEvent(t, "e1", 13, 200)
	batch = append(batch, poison, poison) // a duplicate of the rejected record too
	batch = append(batch, Message{Subject: "x", Data: []byte("{")})

	for round := range 2 { // the redelivery changes nothing
		res, err := s.WriteBatch(ctx, batch)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		wantInserted := len(batch) - 3
		if round == 1 {
			wantInserted = 0
		}
		if res.DeadLetters != 2 || res.Records != len(batch)-3 || res.Inserted != wantInserted {
			t.Errorf("round %d: %+v, want 2 dead letters, %d records, %d inserted", round, res, len(batch)-3, wantInserted)
		}
		c := counts(t, s)
		if c["events"] != 42 || c["dead_letters"] != 2 || c["experiments"] != 1 {
			t.Errorf("round %d: counts %v", round, c)
		}
	}
	var reason string
	if err := s.db.QueryRowContext(ctx, `SELECT reason FROM dead_letters WHERE raw = ?`, poison.Data).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "rejected by the database") || !strings.Contains(reason, "CHECK") {
		t.Errorf("reason = %q", reason)
	}
}

// TestWriteBatchKeepsConflicts publishes a second, different version of a
// stored record: the first stays, the second is kept in conflicts with
// both hashes (once, however often it is redelivered), and an identical
// redelivery is a plain duplicate.
func TestWriteBatchKeepsConflicts(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	first, second := bigEvent(t, "e1", 7, 300), bigEvent(t, "e1", 7, 400)
	third := bigEvent(t, "e1", 8, 300)
	if _, err := s.WriteBatch(ctx, []Message{first, third}); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		res, err := s.WriteBatch(ctx, []Message{second, first, third})
		if err != nil {
			t.Fatal(err)
		}
		if res.Conflicts != 1 || res.Inserted != 0 {
			t.Errorf("round %d: %+v, want one conflict and nothing inserted", round, res)
		}
	}
	// Two versions inside one batch: the first is stored, the second kept.
	a, b := bigEvent(t, "e1", 9, 300), bigEvent(t, "e1", 9, 500)
	if res, err := s.WriteBatch(ctx, []Message{a, b}); err != nil || res.Conflicts != 1 || res.Inserted != 1 {
		t.Fatalf("in-batch versions: %+v, %v", res, err)
	}

	type row struct{ record, stored, new string }
	var got []row
	rs, err := s.db.QueryContext(ctx, `SELECT record_id, stored_sha256, new_sha256 FROM conflicts ORDER BY record_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.record, &r.stored, &r.new); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []row{
		{"e1.event.7", sha256Hex(first.Data), sha256Hex(second.Data)},
		{"e1.event.9", sha256Hex(a.Data), sha256Hex(b.Data)},
	}
	if !slices.Equal(got, want) {
		t.Errorf("conflicts %v\nwant %v", got, want)
	}
	var kept string
	if err := s.db.QueryRowContext(ctx, `SELECT record_sha256 FROM events WHERE seq = 7`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != sha256Hex(first.Data) {
		t.Errorf("stored version of seq 7 has hash %s, want the first's %s", kept, sha256Hex(first.Data))
	}
}

// TestDeadLettersAreBounded stores junk and an over-size record: each dead
// letter keeps a bounded prefix, the full size and hash.
func TestDeadLettersAreBounded(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	junk := Message{Subject: "simcash.x.event", Data: bytes.Repeat([]byte{0xff}, 2<<20)}
	// Well-formed but over the limit (schema.Encode would have cut it).
	huge := Message{Subject: "simcash.e1.event.llm_interaction", Data: []byte(`{"v":1,"kind":"event","experiment_id":"e1","key":"1","data":{"seq":1,"iteration":1,"event_type":"llm_interaction","data":{"pad":"` +
		strings.Repeat("x", schema.MaxRecordBytes) + `"},"timestamp":"2026-01-02T03:04:05Z"}}`)}
	res, err := s.WriteBatch(ctx, []Message{junk, huge, bigEvent(t, "e1", 2, 300)})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadLetters != 2 || res.Inserted != 1 {
		t.Fatalf("%+v, want two dead letters and the small record stored", res)
	}
	rs, err := s.db.QueryContext(ctx, `SELECT octet_length(raw), raw_bytes, raw_sha256, reason FROM dead_letters ORDER BY raw_bytes`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for _, m := range []Message{huge, junk} {
		if !rs.Next() {
			t.Fatal("missing dead letter")
		}
		var kept, size int64
		var sum, reason string
		if err := rs.Scan(&kept, &size, &sum, &reason); err != nil {
			t.Fatal(err)
		}
		if kept != DeadLetterPrefix || size != int64(len(m.Data)) || sum != sha256Hex(m.Data) {
			t.Errorf("dead letter kept %d bytes of %d (hash %s); want %d of %d (hash %s)", kept, size, sum, DeadLetterPrefix, len(m.Data), sha256Hex(m.Data))
		}
		if m.Subject == huge.Subject && !strings.Contains(reason, "limit") {
			t.Errorf("over-size reason %q", reason)
		}
	}
}

func TestUnrecoverable(t *testing.T) {
	for msg, want := range map[string]bool{
		"FATAL Error: Failed: database has been invalidated because of a previous fatal error": true,
		"Out of Memory Error: failed to pin block of size 7.0 MiB":                             false,
		"Constraint Error: CHECK constraint failed":                                            false,
	} {
		if got := errors.Is(unrecoverable(errors.New(msg)), ErrUnrecoverable); got != want {
			t.Errorf("unrecoverable(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestQuestionMarkInPath(t *testing.T) {
	_, err := Open(context.Background(), t.TempDir()+"/a?memory_limit=1GB.db")
	if !errors.Is(err, ErrBadPath) {
		t.Errorf("Open of a path with '?': %v, want ErrBadPath", err)
	}
}

// TestLongTextsGoToBlobFiles: an event's long texts are stored once in blob
// files, its row holds references, and Events gives the data back byte
// for byte (through a symbolic link to the database too).
func TestLongTextsGoToBlobFiles(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	prompt := strings.Repeat("línea <b>&\"\n", 3000) // escapes of every kind
	data, err := json.Marshal(map[string]any{"agent": "BANK_A", "user_prompt": prompt, "system_prompt": prompt, "raw_response": "short", "tokens": 3})
	if err != nil {
		t.Fatal(err)
	}
	data = append([]byte(" "), data...) // odd spacing survives too
	var batch []Message
	for seq := range int64(3) {
		batch = append(batch, msg(t, &schema.Event{ExpID: "e1", Seq: seq + 1, Iteration: 1, EventType: "llm_interaction", Data: data, Timestamp: t0}))
	}
	batch = append(batch, msg(t, experiment("e1", "exp1", schema.StatusCompleted, 0, t0)[0]))
	if res, err := s.WriteBatch(ctx, batch); err != nil || res.Inserted != 4 {
		t.Fatalf("%+v, %v", res, err)
	}
	files, _ := filepath.Glob(filepath.Join(BlobDir(s.path), "*.json.gz"))
	if len(files) != 1 {
		t.Errorf("%d blob files, want one for the text repeated six times", len(files))
	}
	var stored string
	if err := s.db.QueryRowContext(ctx, `SELECT data::VARCHAR FROM events WHERE seq = 1`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) > 4<<10 || !strings.Contains(stored, `"simcash_blob"`) || !strings.Contains(stored, `"raw_response":"short"`) {
		t.Errorf("row data is %d bytes: %.300s", len(stored), stored)
	}
	evs, err := s.Events(ctx, "e1", EventFilter{})
	if err != nil || len(evs) != 3 {
		t.Fatalf("events %d, %v", len(evs), err)
	}
	var got, want any
	if err := json.Unmarshal(evs[2].Data, &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(data, &want)
	if !reflect.DeepEqual(got, want) {
		t.Error("the texts did not come back")
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, data) // as the wire envelope carries it
	if string(evs[2].Data) != compact.String() {
		t.Errorf("data not restored byte for byte:\n%.200s\nwant\n%.200s", evs[2].Data, data)
	}
}
