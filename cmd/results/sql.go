package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
)

// SQLCommand runs a read-only query.
type SQLCommand struct {
	dbOptions
	Limit int
}

func (c *SQLCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sql QUERY",
		Short: "Run one read-only SELECT on the results database (also while a persister holds it)",
		Long: `Run one SELECT (WITH, VALUES and UNION included) and print its rows. Anything else is
refused before it runs. While a persister holds the file, the persister runs the query.

Tables: experiments, experiment_completions, iterations, policy_evaluations, events,
dead_letters (messages that can never be stored: a 4 KiB prefix, size and SHA-256),
conflicts (second versions that differ from a stored record, with both hashes). Views: runs (one row per run), run_final_costs (final cost per run and
agent), iteration_agents (cost, parameters and accepted per iteration and agent), and
the reference's experiment_iterations and experiment_events (with run_id).
Money columns are integer cents.`,
		Example: `  results sql "SELECT run_id, seed, agent_id, final_cost FROM run_final_costs ORDER BY run_id"
  results sql "SELECT iteration, agent_id, cost, parameters FROM iteration_agents WHERE run_id = 'exp2-...'" --format csv`,
		Args: args("QUERY"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	cmd.Flags().IntVar(&c.Limit, "limit", 10000, "at most this many rows (0: all)")
	return cmd
}

// Run runs the query and prints the rows.
func (c *SQLCommand) Run(ctx context.Context, w io.Writer, query string) error {
	if c.Limit < 0 {
		return usagef("--limit %d: use 0 (all) or more", c.Limit)
	}
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := r.Query(ctx, query, c.Limit)
	if err != nil {
		return analysisErr(err)
	}
	if c.Format == "json" {
		out := make([]map[string]any, len(res.Rows))
		for i, row := range res.Rows {
			out[i] = make(map[string]any, len(row))
			for j, v := range row {
				out[i][res.Columns[j]] = v
			}
		}
		return writeJSON(w, out)
	}
	rows := make([][]string, len(res.Rows))
	for i, row := range res.Rows {
		rows[i] = make([]string, len(row))
		for j, v := range row {
			rows[i][j] = cell(v)
		}
	}
	if c.Format == "csv" {
		return writeCSV(w, res.Columns, rows)
	}
	if err := writeTable(w, escapeRow(res.Columns), escapeRows(rows)); err != nil {
		return err
	}
	if res.Truncated {
		_, err = fmt.Fprintf(w, "(first %d rows shown; --limit 0 shows all)\n", c.Limit)
	}
	return err
}

// cell formats a query value for a table or CSV cell.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any, map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}
