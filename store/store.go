// Package store keeps simcash records in one DuckDB file: it applies the
// schema's migrations, writes batches of wire messages idempotently (the
// persister's entry point) and answers the read queries of the results tool.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"simcash/schema"
)

// ErrNotFound is returned by Show and the other per-experiment queries when
// the database holds no such experiment.
var ErrNotFound = errors.New("experiment not found")

// ErrNotResultsDB is returned by OpenReadOnly for a file that is not a
// simcash results database, or one written by a newer simcash.
var ErrNotResultsDB = errors.New("not a simcash results database")

// ErrBadPath is returned for a database path DuckDB's driver would misread.
var ErrBadPath = errors.New("unusable database path")

// ErrUnrecoverable marks a write error after which DuckDB refuses every
// further statement on this handle ("database has been invalidated"): only
// a new process can go on, so a persister exits and its supervisor
// restarts it. The file itself is intact up to the last commit.
var ErrUnrecoverable = errors.New("results database unusable until restart")

// unrecoverable wraps err with ErrUnrecoverable when DuckDB says it
// invalidated the database.
func unrecoverable(err error) error {
	if err != nil && (strings.Contains(err.Error(), "database has been invalidated") || strings.Contains(err.Error(), "FATAL Error")) {
		return fmt.Errorf("%w: %w", ErrUnrecoverable, err)
	}
	return err
}

// Store is an open DuckDB results database. It is safe for concurrent use;
// writes are serialised.
type Store struct {
	db       *sql.DB
	conn     *duckdb.Connector
	path     string
	readOnly bool
	log      *slog.Logger

	// writeMu serialises writes, and reads with writes: DuckDB (v1.5 here)
	// can return corrupted strings to a query that runs while another
	// connection of the same database appends (TestReadWhileWriting saw it
	// about once in 60 runs on a loaded machine), so a read waits for the
	// batch in progress.
	writeMu     sync.RWMutex
	now         func() time.Time
	lostAfter   time.Duration
	memoryLimit string
	// beforeCommit, when set by tests, runs after the batch is written and
	// before COMMIT; an error aborts the batch.
	beforeCommit func() error
	// staging selects the temp-table write path instead of the query
	// appender (see stageRows).
	staging bool
}

// Option configures Open and OpenReadOnly.
type Option func(*Store)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithLostAfter sets how long an experiment may show no sign of life before
// it is reported as lost (default DefaultLostAfter).
func WithLostAfter(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.lostAfter = d
		}
	}
}

// DefaultMemoryLimit bounds DuckDB's buffer memory per open store.
const DefaultMemoryLimit = "512MB"

// WithMemoryLimit sets DuckDB's memory_limit (e.g. "1GB") for this store.
func WithMemoryLimit(limit string) Option { return func(s *Store) { s.memoryLimit = limit } }

// Open opens or creates the database at path for writing, creating parent
// directories and applying pending migrations. Only one process may hold a
// DuckDB file open for writing; see IsLocked.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create directory for database %s: %w", path, err)
		}
	}
	s, err := open(ctx, path, false, opts)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens an existing database for reading. It fails when the file
// does not exist, and (IsLocked) while another process writes it.
func OpenReadOnly(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open results database: %w (check --db or SIMCASH_DB)", err)
	}
	s, err := open(ctx, path, true, opts)
	if err != nil {
		if strings.Contains(err.Error(), "not a valid DuckDB database file") {
			return nil, fmt.Errorf("%w: %s is not a DuckDB file (check --db or SIMCASH_DB)", ErrNotResultsDB, path)
		}
		return nil, err
	}
	var version int
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w: %s has no schema_migrations table (check --db or SIMCASH_DB)", ErrNotResultsDB, path)
	}
	latest := schema.Migrations[len(schema.Migrations)-1].Version
	if version > latest {
		s.Close()
		return nil, fmt.Errorf("%w: %s has schema version %d, newer than this program's %d: upgrade simcash", ErrNotResultsDB, path, version, latest)
	}
	if version < latest {
		// Written by an older simcash: bring it up to date once (nobody
		// holds it, or opening read-only would have failed), then read.
		s.Close()
		w, err := Open(ctx, path, opts...)
		if err != nil {
			return nil, fmt.Errorf("upgrade %s from schema version %d: %w", path, version, err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("upgrade %s from schema version %d: %w", path, version, err)
		}
		return open(ctx, path, true, opts)
	}
	return s, nil
}

func open(ctx context.Context, path string, readOnly bool, opts []Option) (*Store, error) {
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("%w %q: DuckDB's driver reads a '?' as the start of its options; rename the file", ErrBadPath, path)
	}
	s := &Store{path: path, readOnly: readOnly, log: slog.Default(), now: time.Now, lostAfter: DefaultLostAfter, memoryLimit: DefaultMemoryLimit}
	for _, o := range opts {
		o(s)
	}
	// DuckDB's buffer manager otherwise grows towards 80% of the machine's
	// memory as the file grows; a fixed limit keeps a long-running
	// persister's memory flat (pages beyond it are evicted to the file).
	dsn := path + "?memory_limit=" + s.memoryLimit
	if readOnly {
		dsn += "&access_mode=read_only"
	}
	c, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("open results database %s: %w", path, err)
	}
	s.conn = c
	s.db = sql.OpenDB(c)
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open results database %s: %w", path, err)
	}
	return s, nil
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Close closes the database, checkpointing it when it was opened for writing.
func (s *Store) Close() error {
	var errs []error
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	return errors.Join(errs...)
}

// IsLocked reports whether err says the database file is held by another
// process (DuckDB allows one writer and no readers beside it), e.g. a running
// persister. The results tool then asks that process instead.
func IsLocked(err error) bool {
	if err == nil {
		return false
	}
	// DuckDB reports this only as text: `IO Error: Could not set lock on file
	// "...": Conflicting lock is held in <program> (PID n)`.
	msg := err.Error()
	return strings.Contains(msg, "Could not set lock on file") || strings.Contains(msg, "Conflicting lock is held")
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, schema.MigrationsTableDDL); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, m := range schema.Migrations {
		if m.Version <= current {
			continue
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to version %d: %w", m.Version, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", m.Version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?)`, m.Version, s.now()); err != nil {
			tx.Rollback()
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit migration %d: %w", m.Version, err)
		}
		s.log.Info("migrated results database", "path", s.path, "version", m.Version)
	}
	if latest := schema.Migrations[len(schema.Migrations)-1].Version; current > latest {
		return fmt.Errorf("results database %s has schema version %d, newer than this program's %d: upgrade simcash", s.path, current, latest)
	}
	return nil
}

// Counts returns the number of rows in each table, keyed by table name.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	out := make(map[string]int64, len(schema.Tables))
	for _, t := range schema.Tables {
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// rawConn runs f with the driver connection of c, as the appender needs it.
func rawConn(c *sql.Conn, f func(driver.Conn) error) error {
	return c.Raw(func(dc any) error {
		d, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		return f(d)
	})
}
