package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"simcash/schema"
)

// Message is one wire message as the bus delivers it.
type Message struct {
	Subject string
	Data    []byte
}

// BatchResult says what WriteBatch did with a batch.
type BatchResult struct {
	Records     int // messages decoded and offered to the tables
	Inserted    int // rows actually inserted; Records-Inserted were already stored
	DeadLetters int // messages that can never be stored, kept in dead_letters
	Conflicts   int // second, different versions of stored records, kept in conflicts
}

// table describes how one record kind maps onto its table.
type table struct {
	name string
	kind schema.Kind
	row  func(schema.Record) ([]driver.Value, error)
	// key names the primary key columns, the first values of a row; nil
	// for heartbeats, whose versions are not compared.
	key []string
}

// tables is in dependency-free order; a batch writes each non-empty group.
var tables = []table{
	{schema.TableExperiments, schema.KindStarted, startedRow, []string{"experiment_id"}},
	{schema.TableCompletions, schema.KindCompleted, completedRow, []string{"experiment_id"}},
	{schema.TableIterations, schema.KindIteration, iterationRow, []string{"experiment_id", "iteration"}},
	{schema.TableEvaluations, schema.KindEvaluation, evaluationRow, []string{"experiment_id", "iteration", "agent_id"}},
	{schema.TableEvents, schema.KindEvent, eventRow, []string{"experiment_id", "seq"}},
	{schema.TableHeartbeats, schema.KindHeartbeat, heartbeatRow, nil},
}

// DeadLetterPrefix is how many bytes of a dead letter are kept, beside
// its size and SHA-256: enough to see what it was, bounded however large
// or numerous the junk.
const DeadLetterPrefix = 4 << 10

// deadLetter is a message that can never be stored.
type deadLetter struct {
	subject string
	reason  string
	raw     []byte
}

// conflict is a second version of a stored record that differs from it.
type conflict struct {
	subject, recordID, stored, new string
	raw                            []byte
}

// pending is a decoded record on its way to its table.
type pending struct {
	msg  Message
	row  []driver.Value
	id   string // schema.MsgID
	hash string // SHA-256 of the message, also the row's last value
	dups int    // later copies of the same record in the batch, dropped
	// variants are the differing versions among the dups: all but the
	// stored one become conflicts.
	variants []variant
}

type variant struct {
	msg  Message
	hash string
}

// batch is a decoded batch: rows per record kind, and dead letters.
type batch struct {
	groups map[schema.Kind][]*pending
	dead   []deadLetter
}

// appendError marks a failure while appending rows, before COMMIT: it may
// be caused by one record, which isolate can find.
type appendError struct{ err error }

func (e appendError) Error() string { return e.err.Error() }
func (e appendError) Unwrap() error { return e.err }

// WriteBatch decodes msgs and stores all of them in one transaction: records
// through DuckDB's appender with ON CONFLICT DO NOTHING, so a redelivered
// record is a no-op, and messages that can never be stored in dead_letters
// with the reason. It returns an error only when nothing was committed; the
// caller must then not acknowledge the batch.
//
// When DuckDB itself rejects a record that decoded fine, WriteBatch finds
// it with rolled-back trial appends and dead-letters it too, so that one
// record cannot block the stream; the batch is still committed once.
func (s *Store) WriteBatch(ctx context.Context, msgs []Message) (BatchResult, error) {
	if s.readOnly {
		return BatchResult{}, errors.New("write batch: store is opened read-only")
	}
	b, res := prepare(msgs)
	if len(msgs) == 0 {
		return res, nil
	}
	if err := s.externalize(b); err != nil {
		return BatchResult{}, fmt.Errorf("write batch of %d messages: %w", len(msgs), err)
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return BatchResult{}, fmt.Errorf("write batch: get connection: %w", unrecoverable(err))
	}
	defer conn.Close()
	inserted, conflicts, err := s.writeTx(ctx, conn, b, true)
	var ae appendError
	if err != nil && errors.As(err, &ae) && ctx.Err() == nil {
		moved, isoErr := s.isolate(ctx, conn, &b)
		if isoErr != nil {
			s.log.Warn("isolating a failing record", "err", isoErr)
		}
		if moved > 0 {
			res.Records -= moved
			inserted, conflicts, err = s.writeTx(ctx, conn, b, true)
		}
	}
	if err != nil {
		return BatchResult{}, fmt.Errorf("write batch of %d messages: %w", len(msgs), unrecoverable(err))
	}
	res.Inserted = inserted
	res.DeadLetters = len(b.dead)
	res.Conflicts = conflicts
	// One line per batch, not per message: 100,000 junk messages must not
	// become 100,000 log lines.
	if len(b.dead) > 0 {
		d := b.dead[0]
		s.log.Warn("dead letters stored", "count", len(b.dead), "first_subject", d.subject, "first_reason", clipReason(d.reason))
	}
	if conflicts > 0 {
		s.log.Warn("second versions differing from stored records kept in conflicts", "count", conflicts)
	}
	return res, nil
}

// prepare decodes msgs into rows per kind and dead letters.
func prepare(msgs []Message) (batch, BatchResult) {
	var res BatchResult
	b := batch{groups: make(map[schema.Kind][]*pending)}
	seen := make(map[string]*pending, len(msgs))
	for _, m := range msgs {
		if len(m.Data) > schema.MaxRecordBytes {
			// Not even decoded: its size alone makes it junk.
			b.dead = append(b.dead, deadLetter{subject: m.Subject, raw: m.Data,
				reason: fmt.Sprintf("%v: message of %d bytes, over the %d-byte limit of a record", schema.ErrInvalid, len(m.Data), schema.MaxRecordBytes)})
			continue
		}
		r, err := decode(m.Data)
		var row []driver.Value
		if err == nil && m.Subject != "" && m.Subject != schema.Subject(r) {
			// Subject permissions are per experiment: a record must not
			// reach another experiment's rows through its own subject.
			err = fmt.Errorf("%w: published on %s, but the record belongs on %s", schema.ErrInvalid, m.Subject, schema.Subject(r))
		}
		if err == nil {
			row, err = rowFor(r)
		}
		if err != nil {
			b.dead = append(b.dead, deadLetter{subject: m.Subject, reason: err.Error(), raw: m.Data})
			continue
		}
		res.Records++
		// DuckDB refuses two rows with one key in a single INSERT even with
		// ON CONFLICT, so duplicates inside a batch are dropped here.
		id, hash := schema.MsgID(r), sha256Hex(m.Data)
		if p := seen[id]; p != nil {
			p.dups++
			if p.hash != hash && !slices.ContainsFunc(p.variants, func(v variant) bool { return v.hash == hash }) {
				p.variants = append(p.variants, variant{m, hash})
			}
			continue
		}
		p := &pending{msg: m, row: append(row, hash), id: id, hash: hash}
		seen[id] = p
		b.groups[r.Kind()] = append(b.groups[r.Kind()], p)
	}
	res.DeadLetters = len(b.dead)
	return b, res
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeTx writes b in one transaction, committed when commit is set and
// rolled back otherwise (a trial). Append failures are appendErrors.
func (s *Store) writeTx(ctx context.Context, conn *sql.Conn, b batch, commit bool) (inserted, conflicts int, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	inserted, conflicts, err = s.writeGroups(ctx, conn, b)
	if err != nil {
		err = appendError{err}
	}
	if err == nil && commit && s.beforeCommit != nil {
		err = s.beforeCommit()
	}
	if err == nil && commit {
		if _, err = conn.ExecContext(ctx, "COMMIT"); err == nil {
			return inserted, conflicts, nil
		}
	}
	// Use a fresh context: the rollback must happen even when ctx is done.
	if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil && commit {
		s.log.Warn("rollback failed", "err", rbErr)
	}
	return inserted, conflicts, err
}

// isolate finds the rows DuckDB rejects on their own, by bisecting each
// group with rolled-back trial appends, and moves them to b's dead letters.
// It returns how many records it moved (with their in-batch duplicates).
func (s *Store) isolate(ctx context.Context, conn *sql.Conn, b *batch) (int, error) {
	moved := 0
	for kind, rows := range b.groups {
		var bad []*pending
		var reasons []error
		var bisect func(ps []*pending) error
		bisect = func(ps []*pending) error {
			_, _, err := s.writeTx(ctx, conn, batch{groups: map[schema.Kind][]*pending{kind: ps}}, false)
			var ae appendError
			if err == nil {
				return nil
			}
			if !errors.As(err, &ae) {
				return err // cannot even try: give up, the caller reports the original error
			}
			if len(ps) == 1 {
				bad, reasons = append(bad, ps[0]), append(reasons, ae.err)
				return nil
			}
			if err := bisect(ps[:len(ps)/2]); err != nil {
				return err
			}
			return bisect(ps[len(ps)/2:])
		}
		if err := bisect(rows); err != nil {
			return moved, err
		}
		if len(bad) == 0 {
			continue
		}
		keep := rows[:0:0]
		for _, p := range rows {
			if i := slices.Index(bad, p); i >= 0 {
				b.dead = append(b.dead, deadLetter{subject: p.msg.Subject, raw: p.msg.Data,
					reason: "rejected by the database: " + reasons[i].Error()})
				moved += 1 + p.dups
				continue
			}
			keep = append(keep, p)
		}
		b.groups[kind] = keep
	}
	return moved, nil
}

func (s *Store) writeGroups(ctx context.Context, conn *sql.Conn, b batch) (inserted, conflicts int, err error) {
	var found []conflict
	for _, t := range tables {
		ps := b.groups[t.kind]
		if len(ps) == 0 {
			continue
		}
		rows := make([][]driver.Value, len(ps))
		for i, p := range ps {
			rows[i] = p.row
		}
		n, err := s.appendFn()(ctx, conn, t.name, rows)
		if err != nil {
			return 0, 0, fmt.Errorf("append to %s: %w", t.name, err)
		}
		inserted += n
		if t.key != nil {
			if found, err = findConflicts(ctx, conn, t, ps, n < len(ps), found); err != nil {
				return 0, 0, fmt.Errorf("compare versions in %s: %w", t.name, err)
			}
		}
	}
	now := s.now().UTC()
	if len(b.dead) > 0 {
		rows := make([][]driver.Value, len(b.dead))
		for i, d := range b.dead {
			subject := strings.ToValidUTF8(d.subject, "?")
			sum := sha256.Sum256(append([]byte(subject+"\x00"), d.raw...))
			rows[i] = []driver.Value{hex.EncodeToString(sum[:16]), now, subject, strings.ToValidUTF8(d.reason, "?"),
				prefix(d.raw), int64(len(d.raw)), sha256Hex(d.raw)}
		}
		if _, err := s.appendFn()(ctx, conn, schema.TableDeadLetters, rows); err != nil {
			return 0, 0, fmt.Errorf("append to dead_letters: %w", err)
		}
	}
	if len(found) > 0 {
		rows := make([][]driver.Value, len(found))
		for i, c := range found {
			id := sha256.Sum256([]byte(c.recordID + "\x00" + c.new))
			rows[i] = []driver.Value{hex.EncodeToString(id[:16]), now, strings.ToValidUTF8(c.subject, "?"), c.recordID,
				c.stored, c.new, prefix(c.raw), int64(len(c.raw))}
		}
		if _, err := s.appendFn()(ctx, conn, schema.TableConflicts, rows); err != nil {
			return 0, 0, fmt.Errorf("append to conflicts: %w", err)
		}
	}
	return inserted, len(found), nil
}

// findConflicts appends to conflicts every version in ps (each pending
// record and its in-batch variants) that differs from the version stored
// under its key. When some keys were stored before this batch (stale), the
// stored hashes are read back; a row stored before hashes were kept (NULL)
// cannot be compared and its versions count as duplicates.
func findConflicts(ctx context.Context, conn *sql.Conn, t table, ps []*pending, stale bool, conflicts []conflict) ([]conflict, error) {
	stored := map[string]string{}
	if stale {
		var err error
		if stored, err = storedHashes(ctx, conn, t, ps); err != nil {
			return conflicts, err
		}
	}
	for _, p := range ps {
		h, ok := stored[keyString(p.row[:len(t.key)])]
		if !ok {
			h = p.hash // stored now, by this batch
		}
		for _, v := range append([]variant{{p.msg, p.hash}}, p.variants...) {
			if h != "" && v.hash != h {
				conflicts = append(conflicts, conflict{subject: v.msg.Subject, recordID: p.id, stored: h, new: v.hash, raw: v.msg.Data})
			}
		}
	}
	return conflicts, nil
}

// storedHashes reads the record_sha256 of ps's keys in table t.
func storedHashes(ctx context.Context, conn *sql.Conn, t table, ps []*pending) (map[string]string, error) {
	k := len(t.key)
	tuples := make([]string, len(ps))
	args := make([]any, 0, k*len(ps))
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	on := make([]string, k)
	for i, c := range t.key {
		on[i] = "t." + c + " = v." + c
	}
	for i, p := range ps {
		tuples[i] = one
		for _, v := range p.row[:k] {
			args = append(args, v)
		}
	}
	q := `SELECT ` + "t." + strings.Join(t.key, ", t.") + `, t.record_sha256 FROM ` + t.name + ` t JOIN (VALUES ` +
		strings.Join(tuples, ", ") + `) v(` + strings.Join(t.key, ", ") + `) ON ` + strings.Join(on, " AND ") +
		``
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := map[string]string{}
	for rows.Next() {
		vals := make([]any, k+1)
		ptrs := make([]any, k+1)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		h := "" // stored before hashes were kept
		if vals[k] != nil {
			h = fmt.Sprint(vals[k])
		}
		stored[keyString(vals[:k])] = h
	}
	return stored, rows.Err()
}

// keyString joins key values unambiguously; integers of any width print
// alike, so stored and batch values compare.
func keyString[T any](vals []T) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, "\x00")
}

// prefix is what a dead letter or conflict keeps of a message.
func prefix(raw []byte) []byte {
	if raw == nil {
		return []byte{}
	}
	return raw[:min(len(raw), DeadLetterPrefix)]
}

func clipReason(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

type appendFunc func(ctx context.Context, conn *sql.Conn, tableName string, rows [][]driver.Value) (int, error)

func (s *Store) appendFn() appendFunc {
	if s.staging {
		return s.stageRows
	}
	return s.appendRows
}

// stageRows appends rows with a plain appender into a temporary table shaped
// like tableName, then moves them with INSERT OR IGNORE, which reports how
// many rows were new. It is the alternative to appendRows that
// BenchmarkAppenderOnly compares against: 10-20% slower on 1 KB records, so
// it is not the default.
func (s *Store) stageRows(ctx context.Context, conn *sql.Conn, tableName string, rows [][]driver.Value) (int, error) {
	stage := "stage_" + tableName
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+stage+` AS SELECT * FROM `+tableName+` LIMIT 0`); err != nil {
		return 0, err
	}
	err := rawConn(conn, func(dc driver.Conn) error {
		a, err := duckdb.NewAppender(dc, "temp", "main", stage)
		if err != nil {
			return err
		}
		return fill(ctx, a, rows)
	})
	if err != nil {
		return 0, err
	}
	res, err := conn.ExecContext(ctx, `INSERT OR IGNORE INTO `+tableName+` SELECT * FROM `+stage)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if _, err := conn.ExecContext(ctx, `DELETE FROM `+stage); err != nil {
		return 0, err
	}
	return int(n), nil
}

// appendRows appends rows to table through a query appender whose INSERT
// skips rows whose key is already stored. It returns how many rows were new.
func (s *Store) appendRows(ctx context.Context, conn *sql.Conn, tableName string, rows [][]driver.Value) (int, error) {
	var before int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM `+tableName).Scan(&before); err != nil {
		return 0, err
	}
	err := rawConn(conn, func(dc driver.Conn) error {
		a, err := duckdb.NewTableAppender(dc,
			`INSERT INTO `+tableName+` SELECT * FROM appended_data `+onConflict(tableName),
			"", "", tableName, nil)
		if err != nil {
			return err
		}
		return fill(ctx, a, rows)
	})
	if err != nil {
		return 0, err
	}
	var after int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM `+tableName).Scan(&after); err != nil {
		return 0, err
	}
	return int(after - before), nil
}

// onConflict is what a row whose key is stored already does: nothing, so
// a redelivered record is a no-op; except that the completion of a resumed
// run replaces the "interrupted" one its earlier process recorded.
func onConflict(table string) string {
	if table != schema.TableCompletions {
		return "ON CONFLICT DO NOTHING"
	}
	return `ON CONFLICT (experiment_id) DO UPDATE SET completed_at = excluded.completed_at, status = excluded.status,
		converged = excluded.converged, convergence_reason = excluded.convergence_reason,
		num_iterations = excluded.num_iterations, final_cost = excluded.final_cost, best_cost = excluded.best_cost,
		final_policies = excluded.final_policies, agent_final_costs = excluded.agent_final_costs,
		total_duration_seconds = excluded.total_duration_seconds, record_sha256 = excluded.record_sha256
	WHERE experiment_completions.status = 'interrupted' AND excluded.status <> 'interrupted'`
}

// decode is schema.Decode plus the checks DuckDB would otherwise fail the
// whole batch on.
func decode(b []byte) (schema.Record, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: message is not valid UTF-8", schema.ErrMalformed)
	}
	return schema.Decode(b)
}

func rowFor(r schema.Record) ([]driver.Value, error) {
	for _, t := range tables {
		if t.kind == r.Kind() {
			return t.row(r)
		}
	}
	return nil, fmt.Errorf("%w: %q", schema.ErrUnknownKind, r.Kind())
}

// jsonValue passes a JSON payload to a JSON column: json.RawMessage is written
// as the document itself, whereas a string or []byte would be stored as a JSON
// string. Absent payloads become NULL.
func jsonValue(raw json.RawMessage) driver.Value {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

func jsonOf(v any) (driver.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", schema.ErrInvalid, err)
	}
	return jsonValue(b), nil
}

// int32Col checks a value bound for an INTEGER column.
func int32Col(name string, v int) (driver.Value, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %s %d out of range", schema.ErrInvalid, name, v)
	}
	return int32(v), nil
}

func ts(t time.Time) driver.Value { return t.UTC() }

func startedRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.ExperimentStarted)
	return []driver.Value{r.ExpID, r.Name, r.Type, jsonValue(r.Config), r.MasterSeed, r.Scenario, r.Model,
		ts(r.StartedAt), r.ProgramVersion, r.Host, r.ConfigHash, nullString(r.ProgramCommit), r.ExpID, nullString(r.SweepID)}, nil
}

func completedRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.ExperimentCompleted)
	n, err := int32Col("num_iterations", r.NumIterations)
	if err != nil {
		return nil, err
	}
	costs, err := jsonOf(r.AgentFinalCosts)
	if err != nil {
		return nil, err
	}
	return []driver.Value{r.ExpID, ts(r.CompletedAt), r.Status, r.Converged, r.ConvergenceReason, n,
		r.FinalCost, r.BestCost, jsonValue(r.FinalPolicies), costs, r.DurationSeconds}, nil
}

func iterationRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.Iteration)
	it, err := int32Col("iteration", r.Iteration)
	if err != nil {
		return nil, err
	}
	costs, err := jsonOf(r.AgentCosts)
	if err != nil {
		return nil, err
	}
	acc, err := jsonOf(r.AcceptedChanges)
	if err != nil {
		return nil, err
	}
	return []driver.Value{r.ExpID, it, r.TotalCost, costs, jsonValue(r.Policies), acc, ts(r.Timestamp)}, nil
}

func evaluationRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.PolicyEvaluation)
	it, err := int32Col("iteration", r.Iteration)
	if err != nil {
		return nil, err
	}
	ns, err := int32Col("num_samples", r.NumSamples)
	if err != nil {
		return nil, err
	}
	// The reference's shapes of the proposal's interval, for its queries.
	var ci, stats driver.Value
	if r.CostCILower != nil && r.CostCIUpper != nil {
		if ci, err = jsonOf([2]int64{*r.CostCILower, *r.CostCIUpper}); err != nil {
			return nil, err
		}
		st := map[string]any{"mean_cost": r.NewCost, "ci_95_lower": *r.CostCILower, "ci_95_upper": *r.CostCIUpper,
			"num_samples": r.NumSamples}
		if r.CostStdDev != nil {
			st["std_dev"] = *r.CostStdDev
		}
		if stats, err = jsonOf(map[string]any{r.Agent: st}); err != nil {
			return nil, err
		}
	}
	return []driver.Value{r.ExpID, it, r.Agent, jsonValue(r.ProposedPolicy), r.OldCost, r.NewCost, r.Delta,
		r.Accepted, r.Reason, ns, jsonValue(r.SampleDetails), r.Seed, ts(r.Timestamp),
		r.ExpID, nullString(r.EvaluationMode), nullString(r.ReasonCode), nullInt(r.MeanDelta), nullInt(r.DeltaStdDev),
		nullInt(r.DeltaCILower), nullInt(r.DeltaCIUpper), nullInt(r.CostStdDev), ci, stats}, nil
}

func nullString(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(p *int64) driver.Value {
	if p == nil {
		return nil
	}
	return *p
}

func eventRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.Event)
	it, err := int32Col("iteration", r.Iteration)
	if err != nil {
		return nil, err
	}
	return []driver.Value{r.ExpID, r.Seq, it, r.EventType, jsonValue(r.Data), ts(r.Timestamp)}, nil
}

func heartbeatRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.Heartbeat)
	it, err := int32Col("iteration", r.Iteration)
	if err != nil {
		return nil, err
	}
	return []driver.Value{r.ExpID, r.Beat, it, ts(r.Timestamp)}, nil
}

// fill appends rows to a and flushes it; on error the appender is closed
// without flushing.
func fill(ctx context.Context, a *duckdb.Appender, rows [][]driver.Value) error {
	for _, r := range rows {
		if err := a.AppendRow(r...); err != nil {
			a.Close()
			return err
		}
	}
	return a.CloseWithCancel(ctx)
}
