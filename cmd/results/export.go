package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
)

// ExportCommand writes tables to Parquet or CSV files.
type ExportCommand struct {
	dbOptions
	ExportFormat string
}

func (c *ExportCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export DIR [ID...]",
		Short: "Write the results tables as Parquet or CSV files for DuckDB, pandas, polars or a spreadsheet",
		Long: `Write every table and analysis view (experiments, experiment_completions, iterations,
policy_evaluations, events, runs, run_final_costs, iteration_agents) to DIR as
<table>.parquet (default) or <table>.csv, for the given experiments or all of them. DIR is
created when missing; existing files are never overwritten. While a persister holds the
database, the persister writes the files, so DIR must be on this machine.
Money columns are integer cents.`,
		Example: `  results export out/
  results export out-csv/ exp2-20261206-130102-6a20a5 --format csv
  duckdb -c "SELECT * FROM 'out/run_final_costs.parquet'"`,
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return usagef("export needs a directory: see `results export --help`")
			}
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0], a[1:])
		},
	}
	cmd.Flags().StringVar(&c.DB, "db", defaultDB(), "results database (env SIMCASH_DB)")
	cmd.Flags().StringVar(&c.ExportFormat, "format", "parquet", "file format: parquet or csv")
	return cmd
}

// Run writes the files.
func (c *ExportCommand) Run(ctx context.Context, w io.Writer, dir string, ids []string) error {
	if c.ExportFormat != "parquet" && c.ExportFormat != "csv" {
		return usagef("unknown --format %q: use parquet or csv", c.ExportFormat)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return usageErr(err)
	}
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	files, err := r.Export(ctx, abs, c.ExportFormat, ids)
	if err != nil {
		return analysisErr(err)
	}
	rows := make([][]string, len(files))
	for i, f := range files {
		rows[i] = []string{f.Table, fmt.Sprint(f.Rows), f.Path}
	}
	return writeTable(w, []string{"TABLE", "ROWS", "FILE"}, rows)
}
