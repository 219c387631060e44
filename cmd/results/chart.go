package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"simcash/analysis"
)

// ChartCommand draws convergence charts.
type ChartCommand struct {
	dbOptions
	runSelection
	Agent     string
	Parameter string
	Output    string
}

func (c *ChartCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chart [ID...]",
		Short: "Draw convergence charts: parameter trajectory and cost per iteration, per agent",
		Long: `Draw the convergence figure of one or more runs (PNG or SVG, by -o's extension):
per agent, the parameter's value in force each iteration with the proposals as markers
(green accepted, red rejected), and the cost per iteration (the bootstrap mean in
bootstrap mode) with the proposals' costs. Runs of one configuration that differ only
by seed are drawn as their mean with a band for the 95% interval.`,
		Example: `  results chart exp2-20261206-130102-6a20a5 -o exp2.png
  results chart --name exp2 --agent BANK_A -o exp2-seeds.svg`,
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a)
		},
	}
	c.dbOptions.register(cmd)
	c.registerSelection(cmd)
	f := cmd.Flags()
	f.StringVar(&c.Agent, "agent", "", "only this agent (default: every optimized agent)")
	f.StringVar(&c.Parameter, "parameter", "", "policy parameter to draw (default: the first one; '-' for costs only)")
	f.StringVarP(&c.Output, "output", "o", "", "file to write, .png or .svg (default: <ID>.png)")
	return cmd
}

// Run draws the chart of the selected runs.
func (c *ChartCommand) Run(ctx context.Context, w io.Writer, ids []string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(c.Output)), ".")
	if c.Output != "" && format != "png" && format != "svg" {
		return usagef("-o %q: the chart is written as .png or .svg", c.Output)
	}
	runs, closeFn, err := c.loadRuns(ctx, &c.runSelection, ids)
	if err != nil {
		return err
	}
	defer closeFn()
	out := c.Output
	if out == "" {
		out, format = runs[0].ID()+".png", "png"
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".chart-*")
	if err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	defer os.Remove(f.Name())
	if err := analysis.Chart(f, runs, format, analysis.ChartOptions{Agent: c.Agent, Parameter: c.Parameter}); err != nil {
		f.Close()
		return analysisErr(err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write chart: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	_, err = fmt.Fprintf(w, "wrote %s (%d run(s))\n", out, len(runs))
	return err
}
