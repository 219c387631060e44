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
}

// table describes how one record kind maps onto its table.
type table struct {
	name string
	kind schema.Kind
	row  func(schema.Record) ([]driver.Value, error)
}

// tables is in dependency-free order; a batch writes each non-empty group.
var tables = []table{
	{schema.TableExperiments, schema.KindStarted, startedRow},
	{schema.TableCompletions, schema.KindCompleted, completedRow},
	{schema.TableIterations, schema.KindIteration, iterationRow},
	{schema.TableEvaluations, schema.KindEvaluation, evaluationRow},
	{schema.TableEvents, schema.KindEvent, eventRow},
}

// deadLetter is a message that can never be stored.
type deadLetter struct {
	subject string
	reason  string
	raw     []byte
}

// WriteBatch decodes msgs and stores all of them in one transaction: records
// through DuckDB's appender with ON CONFLICT DO NOTHING, so a redelivered
// record is a no-op, and messages that can never be stored in dead_letters
// with the reason. It returns an error only when nothing was committed; the
// caller must then not acknowledge the batch.
func (s *Store) WriteBatch(ctx context.Context, msgs []Message) (BatchResult, error) {
	var res BatchResult
	if s.readOnly {
		return res, errors.New("write batch: store is opened read-only")
	}
	groups := make(map[schema.Kind][][]driver.Value)
	var dead []deadLetter
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		r, err := decode(m.Data)
		var row []driver.Value
		if err == nil {
			row, err = rowFor(r)
		}
		if err != nil {
			dead = append(dead, deadLetter{subject: m.Subject, reason: err.Error(), raw: m.Data})
			continue
		}
		res.Records++
		// DuckDB refuses two rows with one key in a single INSERT even with
		// ON CONFLICT, so duplicates inside a batch are dropped here.
		if id := schema.MsgID(r); !seen[id] {
			seen[id] = true
			groups[r.Kind()] = append(groups[r.Kind()], row)
		}
	}
	res.DeadLetters = len(dead)
	if len(msgs) == 0 {
		return res, nil
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return BatchResult{}, fmt.Errorf("write batch: get connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return BatchResult{}, fmt.Errorf("write batch: begin: %w", err)
	}
	inserted, err := s.writeGroups(ctx, conn, groups, dead)
	if err == nil && s.beforeCommit != nil {
		err = s.beforeCommit()
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		// Use a fresh context: the rollback must happen even when ctx is done.
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			s.log.Warn("rollback failed", "err", rbErr)
		}
		return BatchResult{}, fmt.Errorf("write batch of %d messages: %w", len(msgs), err)
	}
	res.Inserted = inserted
	return res, nil
}

func (s *Store) writeGroups(ctx context.Context, conn *sql.Conn, groups map[schema.Kind][][]driver.Value, dead []deadLetter) (int, error) {
	inserted := 0
	for _, t := range tables {
		rows := groups[t.kind]
		if len(rows) == 0 {
			continue
		}
		n, err := s.appendFn()(ctx, conn, t.name, rows)
		if err != nil {
			return 0, fmt.Errorf("append to %s: %w", t.name, err)
		}
		inserted += n
	}
	if len(dead) > 0 {
		now := s.now().UTC()
		rows := make([][]driver.Value, len(dead))
		for i, d := range dead {
			subject := strings.ToValidUTF8(d.subject, "?")
			sum := sha256.Sum256(append([]byte(subject+"\x00"), d.raw...))
			raw := d.raw
			if raw == nil {
				raw = []byte{}
			}
			rows[i] = []driver.Value{hex.EncodeToString(sum[:16]), now, subject, strings.ToValidUTF8(d.reason, "?"), raw}
			s.log.Warn("dead letter", "subject", subject, "reason", d.reason, "bytes", len(d.raw))
		}
		if _, err := s.appendFn()(ctx, conn, schema.TableDeadLetters, rows); err != nil {
			return 0, fmt.Errorf("append to dead_letters: %w", err)
		}
	}
	return inserted, nil
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
// many rows were new.
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
		for _, r := range rows {
			if err := a.AppendRow(r...); err != nil {
				a.Close()
				return err
			}
		}
		return a.CloseWithCancel(ctx)
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
			`INSERT INTO `+tableName+` SELECT * FROM appended_data ON CONFLICT DO NOTHING`,
			"", "", tableName, nil)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := a.AppendRow(r...); err != nil {
				a.Close()
				return err
			}
		}
		return a.CloseWithCancel(ctx)
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
		ts(r.StartedAt), r.ProgramVersion, r.Host, r.ConfigHash}, nil
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
	return []driver.Value{r.ExpID, it, r.Agent, jsonValue(r.ProposedPolicy), r.OldCost, r.NewCost, r.Delta,
		r.Accepted, r.Reason, ns, jsonValue(r.SampleDetails), r.Seed, ts(r.Timestamp)}, nil
}

func eventRow(rec schema.Record) ([]driver.Value, error) {
	r := rec.(*schema.Event)
	it, err := int32Col("iteration", r.Iteration)
	if err != nil {
		return nil, err
	}
	return []driver.Value{r.ExpID, r.Seq, it, r.EventType, jsonValue(r.Data), ts(r.Timestamp)}, nil
}
