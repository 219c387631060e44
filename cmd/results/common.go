package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/spf13/cobra"

	"simcash/money"
	"simcash/store"
)

// env is the part of the environment results reads.
type env struct {
	DB string `envconfig:"DB" default:"results/all.db"` // SIMCASH_DB; fallbackDB
	// LostAfter is how long a run may show no sign of life before it is
	// reported lost (SIMCASH_LOST_AFTER, e.g. 2m; default 1m).
	LostAfter time.Duration `envconfig:"LOST_AFTER"`
}

// dbOptions are the flags every subcommand has.
type dbOptions struct {
	DB     string
	Format string
}

func (o *dbOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.DB, "db", defaultDB(), "results database (env SIMCASH_DB)")
	cmd.Flags().StringVar(&o.Format, "format", "table", "output format: table, json or csv")
}

func (o *dbOptions) validate() error {
	switch o.Format {
	case "table", "json", "csv":
		return nil
	}
	return usagef("unknown --format %q: use table, json or csv", o.Format)
}

// defaultDB is $SIMCASH_DB, else results/all.db.
func defaultDB() string {
	var e env
	if err := envconfig.Process("SIMCASH", &e); err != nil {
		return fallbackDB
	}
	return e.DB
}

// fallbackDB is the default when SIMCASH_DB is unset.
const fallbackDB = "results/all.db"

// findDefaultDB returns db, except that the fallback default, when absent,
// gives way to the only database in its directory: `runner run` writes
// results/<experiment>.db, and a new user's first `results list` should
// read it. Several candidates are listed rather than guessed between.
func findDefaultDB(db string) (string, error) {
	if db != fallbackDB {
		return db, nil
	}
	if _, err := os.Stat(db); err == nil {
		return db, nil
	}
	found, _ := filepath.Glob(filepath.Join(filepath.Dir(db), "*.db"))
	switch len(found) {
	case 0:
		return db, nil
	case 1:
		return found[0], nil
	}
	return "", usagef("no results database at %s, and %s holds several (%s): pass one with --db or set SIMCASH_DB",
		db, filepath.Dir(db), strings.Join(found, ", "))
}

// openRemoteFunc is how a locked database is read; tests replace it.
var openRemoteFunc = openRemote

// open validates the flags and opens the database read-only, or, when a
// running persister holds it, a Reader that asks that persister.
func (o *dbOptions) open(ctx context.Context) (store.Reader, func(), error) {
	if o.Format == "" {
		o.Format = "table"
	}
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	var e env
	_ = envconfig.Process("SIMCASH", &e)
	db, err := findDefaultDB(o.DB)
	if err != nil {
		return nil, nil, err
	}
	o.DB = db
	s, err := store.OpenReadOnly(ctx, o.DB, store.WithLostAfter(e.LostAfter))
	switch {
	case err == nil:
		return s, func() { s.Close() }, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, usagef("no results database at %s: pass --db or set SIMCASH_DB", o.DB)
	case errors.Is(err, store.ErrNotResultsDB), errors.Is(err, store.ErrBadPath):
		return nil, nil, usageErr(err)
	case store.IsLocked(err):
		r, err := openRemoteFunc(o.DB)
		if err != nil {
			return nil, nil, err
		}
		closeFn := func() {}
		if c, ok := r.(io.Closer); ok {
			closeFn = func() { c.Close() }
		}
		return r, closeFn, nil
	}
	return nil, nil, err
}

// notFound turns the store's unknown-experiment error into a usage error.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return usageErr(err)
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	cw.Write(header)
	cw.WriteAll(rows)
	return cw.Error()
}

func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// dollars formats cents for people: "-$1,234.56".
var dollars = money.Dollars

func dollarsPtr(c *int64) string {
	if c == nil {
		return "-"
	}
	return dollars(*c)
}

func centsPtr(c *int64) string {
	if c == nil {
		return ""
	}
	return strconv.FormatInt(*c, 10)
}

func timeStr(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func timePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return timeStr(*t)
}

func rfc3339(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// clip shortens s for a table cell.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
