package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"simcash/analysis"
)

// DiffCommand shows what changed in an agent's policy.
type DiffCommand struct {
	dbOptions
	Agent    string
	From, To int
}

func (c *DiffCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff ID --agent A",
		Short: "Show what changed in an agent's policy between two iterations: parameters and tree nodes",
		Long: `Compare agent A's policy at the start of iteration --from (default 1) with the one at
the start of iteration --to (default: the final policy): parameters changed, and decision
tree nodes added, removed or changed, by tree and node_id.`,
		Args: args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	f := cmd.Flags()
	f.StringVar(&c.Agent, "agent", "", "the agent (required)")
	f.IntVar(&c.From, "from", 0, "iteration whose starting policy is the old side (default 1)")
	f.IntVar(&c.To, "to", 0, "iteration whose starting policy is the new side (default: the final policy)")
	return cmd
}

// Run prints the diff.
func (c *DiffCommand) Run(ctx context.Context, w io.Writer, id string) error {
	if c.Agent == "" {
		return usagef("diff needs --agent: see `results diff --help`")
	}
	if c.From < 0 || c.To < 0 {
		return usagef("--from and --to are iteration numbers from 1")
	}
	run, _, closeFn, err := c.loadRun(ctx, id)
	if err != nil {
		return err
	}
	defer closeFn()
	d, err := run.Diff(c.Agent, c.From, c.To)
	if err != nil {
		return analysisErr(err)
	}
	if c.Format == "json" {
		return writeJSON(w, d)
	}
	side := func(i int) string {
		if i == len(run.Iterations)+1 {
			return "final policy"
		}
		return "iteration " + strconv.Itoa(i)
	}
	if c.Format == "csv" {
		var rows [][]string
		for _, p := range d.Params {
			rows = append(rows, []string{"parameter", p.Name, "", floatPtr(p.Old), floatPtr(p.New)})
		}
		for _, n := range d.Nodes {
			rows = append(rows, []string{"node", n.NodeID, n.Change, string(n.Old), string(n.New)})
		}
		return writeCSV(w, []string{"kind", "name", "change", "old", "new"}, rows)
	}
	fmt.Fprintf(w, "%s, agent %s: %s -> %s\n", id, c.Agent, side(d.From), side(d.To))
	if len(d.Params) == 0 && len(d.Nodes) == 0 {
		_, err := fmt.Fprintln(w, "no change")
		return err
	}
	for _, p := range d.Params {
		fmt.Fprintf(w, "  parameter %s: %s -> %s\n", analysis.Printable(p.Name), floatOr(p.Old), floatOr(p.New))
	}
	for _, n := range d.Nodes {
		fmt.Fprintf(w, "  node %s/%s %s\n", analysis.Printable(n.Tree), analysis.Printable(n.NodeID), n.Change)
		if n.Old != nil {
			fmt.Fprintf(w, "    - %s\n", analysis.Printable(string(n.Old)))
		}
		if n.New != nil {
			fmt.Fprintf(w, "    + %s\n", analysis.Printable(string(n.New)))
		}
	}
	return nil
}

func floatOr(p *float64) string {
	if p == nil {
		return "(none)"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func floatPtr(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}
