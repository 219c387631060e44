package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"simcash/analysis"
	"simcash/money"
)

// CompareCommand puts runs side by side.
type CompareCommand struct {
	dbOptions
	runSelection
	GroupBy string
}

func (c *CompareCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare [ID...]",
		Short: "Compare runs side by side; --group-by config summarizes runs that differ only by seed",
		Long: `Compare runs side by side: the configuration keys whose values differ, final costs and
parameters per agent, iterations, convergence and model tokens. With --group-by config,
runs that differ only by master seed are grouped, and each group shows n, mean, standard
deviation and 95% confidence interval (Student t) of every final cost and parameter.`,
		Example: `  results compare exp2-20261206-130102-6a20a5 exp2-20261206-130210-0b1c2d
  results compare --name exp2 --group-by config`,
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a)
		},
	}
	c.dbOptions.register(cmd)
	c.registerSelection(cmd)
	cmd.Flags().StringVar(&c.GroupBy, "group-by", "", "'config': statistics per configuration over seeds")
	return cmd
}

// Run prints the comparison.
func (c *CompareCommand) Run(ctx context.Context, w io.Writer, ids []string) error {
	if c.GroupBy != "" && c.GroupBy != "config" {
		return usagef("--group-by %q: the only grouping is 'config'", c.GroupBy)
	}
	runs, closeFn, err := c.loadRuns(ctx, &c.runSelection, ids)
	if err != nil {
		return err
	}
	defer closeFn()
	cmp := analysis.Compare(runs, c.GroupBy == "config")
	switch c.Format {
	case "json":
		return writeJSON(w, cmp)
	case "csv":
		return compareCSV(w, cmp)
	}
	return compareTable(w, cmp)
}

func compareTable(w io.Writer, c *analysis.Comparison) error {
	header := []string{""}
	for _, r := range c.Runs {
		header = append(header, r.ID)
	}
	row := func(name string, f func(analysis.RunSummary) string) []string {
		out := []string{name}
		for _, r := range c.Runs {
			out = append(out, f(r))
		}
		return out
	}
	rows := [][]string{
		row("name", func(r analysis.RunSummary) string { return r.Name }),
		row("status", func(r analysis.RunSummary) string { return r.Status }),
		row("seed", func(r analysis.RunSummary) string { return strconv.FormatInt(r.Seed, 10) }),
		row("model", func(r analysis.RunSummary) string { return r.Model }),
		row("iterations", func(r analysis.RunSummary) string { return strconv.Itoa(r.Iterations) }),
		row("converged", func(r analysis.RunSummary) string {
			if r.Reason == "" {
				return yesNo(r.Converged)
			}
			return yesNo(r.Converged) + " (" + r.Reason + ")"
		}),
		row("final cost", func(r analysis.RunSummary) string { return dollarsPtr(r.FinalCost) }),
	}
	for _, a := range comparedAgents(c) {
		rows = append(rows, row("final cost ["+a+"]", func(r analysis.RunSummary) string {
			if v, ok := r.AgentCosts[a]; ok {
				return dollars(v)
			}
			return "-"
		}))
		for _, p := range paramsOf(c, a) {
			rows = append(rows, row(p+" ["+a+"]", func(r analysis.RunSummary) string {
				if v, ok := r.FinalParams[a][p]; ok {
					return strconv.FormatFloat(v, 'g', -1, 64)
				}
				return "-"
			}))
		}
	}
	rows = append(rows,
		row("model calls", func(r analysis.RunSummary) string { return strconv.FormatInt(r.LLMCalls, 10) }),
		row("tokens (prompt+completion)", func(r analysis.RunSummary) string {
			return strconv.FormatInt(r.PromptTokens, 10) + "+" + strconv.FormatInt(r.CompletionTokens, 10)
		}),
		row("config group", func(r analysis.RunSummary) string { return r.Group[:12] }))
	for i := range rows {
		rows[i] = escapeRow(rows[i])
	}
	if err := writeTable(w, escapeRow(header), rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(c.Config) == 0 {
		fmt.Fprintln(w, "Configuration: identical")
	} else {
		fmt.Fprintln(w, "Configuration keys that differ:")
		var crow [][]string
		for _, d := range c.Config {
			crow = append(crow, escapeRow(append([]string{d.Key}, d.Values...)))
		}
		if err := writeTable(w, escapeRow(append([]string{"KEY"}, header[1:]...)), crow); err != nil {
			return err
		}
	}
	for _, g := range c.Groups {
		fmt.Fprintf(w, "\nGroup %s: %s, n=%d (seeds %s), %d converged\n", g.Key[:12], analysis.Printable(g.Name),
			g.FinalCost.N, joinInts(g.Seeds), g.Converged)
		var grows [][]string
		add := func(name string, s analysis.Summary, f func(float64) string) {
			if s.N == 0 {
				return
			}
			grows = append(grows, []string{name, strconv.Itoa(s.N), f(s.Mean), f(s.SD), "[" + f(s.Lo) + ", " + f(s.Hi) + "]"})
		}
		add("final cost", g.FinalCost, money.DollarsF)
		for _, a := range slices.Sorted(maps.Keys(g.AgentCosts)) {
			add("final cost ["+a+"]", g.AgentCosts[a], money.DollarsF)
			for _, p := range slices.Sorted(maps.Keys(g.Params[a])) {
				add(p+" ["+a+"]", g.Params[a][p], func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) })
			}
		}
		add("iterations", g.Iterations, func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) })
		for i := range grows {
			grows[i] = escapeRow(grows[i])
		}
		if err := writeTable(w, []string{"  MEASURE", "N", "MEAN", "SD", "95% CI"}, indentRows(grows)); err != nil {
			return err
		}
	}
	return nil
}

func compareCSV(w io.Writer, c *analysis.Comparison) error {
	header := []string{"experiment_id", "experiment_name", "status", "master_seed", "model", "num_iterations",
		"converged", "convergence_reason", "final_cost_cents", "agent_id", "agent_final_cost_cents", "parameter", "value",
		"llm_calls", "prompt_tokens", "completion_tokens", "group"}
	var rows [][]string
	for _, r := range c.Runs {
		base := []string{r.ID, r.Name, r.Status, strconv.FormatInt(r.Seed, 10), r.Model, strconv.Itoa(r.Iterations),
			strconv.FormatBool(r.Converged), r.Reason, centsPtr(r.FinalCost)}
		tail := []string{strconv.FormatInt(r.LLMCalls, 10), strconv.FormatInt(r.PromptTokens, 10),
			strconv.FormatInt(r.CompletionTokens, 10), r.Group}
		for _, a := range slices.Sorted(maps.Keys(r.AgentCosts)) {
			ps := r.FinalParams[a]
			if len(ps) == 0 {
				rows = append(rows, slices.Concat(base, []string{a, strconv.FormatInt(r.AgentCosts[a], 10), "", ""}, tail))
			}
			for _, p := range slices.Sorted(maps.Keys(ps)) {
				rows = append(rows, slices.Concat(base, []string{a, strconv.FormatInt(r.AgentCosts[a], 10), p,
					strconv.FormatFloat(ps[p], 'g', -1, 64)}, tail))
			}
		}
	}
	return writeCSV(w, header, rows)
}

func comparedAgents(c *analysis.Comparison) []string {
	set := map[string]bool{}
	for _, r := range c.Runs {
		for a := range r.AgentCosts {
			set[a] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func paramsOf(c *analysis.Comparison, agent string) []string {
	set := map[string]bool{}
	for _, r := range c.Runs {
		for p := range r.FinalParams[agent] {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func joinInts(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

func indentRows(rows [][]string) [][]string {
	for i := range rows {
		rows[i][0] = "  " + rows[i][0]
	}
	return rows
}

func escapeRow(r []string) []string {
	for i := range r {
		r[i] = analysis.Printable(r[i])
	}
	return r
}
