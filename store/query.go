package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"simcash/schema"
)

// ErrInvalidRequest marks a Query or Export the caller can fix: SQL that is
// not a single valid SELECT, an unknown format, a directory that is not
// empty.
var ErrInvalidRequest = errors.New("invalid request")

// invalidRequest is an error that Is ErrInvalidRequest without saying so
// in its text.
type invalidRequest struct{ err error }

func (e invalidRequest) Error() string        { return e.err.Error() }
func (e invalidRequest) Unwrap() error        { return e.err }
func (e invalidRequest) Is(target error) bool { return target == ErrInvalidRequest }

func invalid(format string, a ...any) error { return invalidRequest{fmt.Errorf(format, a...)} }

// errNotSelect is the message for SQL other than one SELECT.
const errNotSelect = "only a single SELECT query may run here"

// QueryResult is the answer to Query: column names and types, and rows of
// JSON-ready values (numbers, strings, booleans, nil, nested lists and maps;
// times as RFC 3339 strings, blobs as text).
type QueryResult struct {
	Columns   []string `json:"columns"`
	Types     []string `json:"types"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated,omitempty"` // more rows than the limit
}

// Query runs one read-only SELECT (WITH, VALUES and set operations
// included) and returns at most limit rows (0: all). Anything else, several
// statements included, is refused with ErrNotAQuery before it runs:
// DuckDB's own parser decides, through json_serialize_sql, which serializes
// SELECT statements only.
func (s *Store) Query(ctx context.Context, query string, limit int) (*QueryResult, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if err := s.checkSelect(ctx, query); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		if ctx.Err() == nil {
			// It parsed: what fails now is binding (an unknown table or
			// column) or evaluating it, the query's own fault.
			return nil, invalid("query: %w", err)
		}
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	res := &QueryResult{Rows: [][]any{}}
	for _, c := range cols {
		res.Columns = append(res.Columns, c.Name())
		res.Types = append(res.Types, c.DatabaseTypeName())
	}
	for rows.Next() {
		if limit > 0 && len(res.Rows) == limit {
			res.Truncated = true
			break
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		for i, v := range vals {
			vals[i] = jsonReady(v)
		}
		res.Rows = append(res.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return res, nil
}

func (s *Store) checkSelect(ctx context.Context, query string) error {
	if strings.TrimSpace(query) == "" {
		return invalid("the query is empty")
	}
	var out string
	if err := s.db.QueryRowContext(ctx, `SELECT json_serialize_sql(?::VARCHAR)::VARCHAR`, query).Scan(&out); err != nil {
		return fmt.Errorf("check query: %w", err)
	}
	var parsed struct {
		Error      bool              `json:"error"`
		ErrorType  string            `json:"error_type"`
		Message    string            `json:"error_message"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &parsed); err != nil {
		return fmt.Errorf("check query: %w", err)
	}
	switch {
	case parsed.Error && parsed.ErrorType == "parser":
		return invalid("query: %s", parsed.Message)
	case parsed.Error:
		return invalid("%s (%s): results are read-only", errNotSelect, parsed.Message)
	case len(parsed.Statements) != 1:
		return invalid("%s, got %d statements", errNotSelect, len(parsed.Statements))
	}
	return nil
}

// jsonReady turns a value scanned from DuckDB into one encoding/json writes
// faithfully and a remote reader decodes to the same text.
func jsonReady(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, int32, int16, int8, uint64, uint32, uint16, uint8, float64, float32:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *big.Int:
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonReady(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonReady(e)
		}
		return out
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// ExportTables are the tables and views Export writes, one file each.
var ExportTables = []string{
	schema.TableExperiments, schema.TableCompletions, schema.TableIterations, schema.TableEvaluations,
	schema.TableEvents, "runs", "run_final_costs", "iteration_agents",
}

// ExportedFile is one file Export wrote.
type ExportedFile struct {
	Table string `json:"table"`
	Path  string `json:"path"`
	Rows  int64  `json:"rows"`
}

// Export writes each of ExportTables to dir as <table>.parquet or
// <table>.csv (format "parquet" or "csv"), limited to the experiments in ids
// when any are given. dir must be absolute; it is created when missing, and
// existing files are never overwritten.
func (s *Store) Export(ctx context.Context, dir, format string, ids []string) ([]ExportedFile, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	var opts string
	switch format {
	case "parquet":
		opts = "(FORMAT parquet)"
	case "csv":
		opts = "(FORMAT csv, HEADER)"
	default:
		return nil, invalid("export format %q: use parquet or csv", format)
	}
	if !filepath.IsAbs(dir) {
		return nil, invalid("export directory %q must be absolute", dir)
	}
	for _, id := range ids {
		if err := s.exists(ctx, id); err != nil {
			return nil, err
		}
	}
	paths := make([]string, len(ExportTables))
	for i, t := range ExportTables {
		paths[i] = filepath.Join(dir, t+"."+format)
		if _, err := os.Lstat(paths[i]); err == nil {
			return nil, invalid("export: %s already exists: choose an empty directory", paths[i])
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	var out []ExportedFile
	for i, t := range ExportTables {
		w := ""
		if len(ids) > 0 {
			w = " WHERE " + idColumn(t) + " IN (?" + strings.Repeat(", ?", len(ids)-1) + ")"
		}
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t+w, args...).Scan(&n); err != nil {
			return out, fmt.Errorf("export %s: %w", t, err)
		}
		// COPY takes no parameters for its file name: the path is quoted.
		q := `COPY (SELECT * FROM ` + t + w + `) TO '` + strings.ReplaceAll(paths[i], "'", "''") + `' ` + opts
		if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
			return out, fmt.Errorf("export %s: %w", t, err)
		}
		out = append(out, ExportedFile{Table: t, Path: paths[i], Rows: n})
	}
	return out, nil
}

// idColumn is the column naming the run in an exported table or view.
func idColumn(table string) string {
	switch table {
	case "runs", "run_final_costs", "iteration_agents":
		return "run_id"
	}
	return "experiment_id"
}
