package main

import (
	"context"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"simcash/experiment"
)

// PoliciesCommand lists an agent's policy at every iteration.
type PoliciesCommand struct {
	dbOptions
	Agent string
}

func (c *PoliciesCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policies ID --agent A",
		Short: "Show an agent's policy at every iteration (the policy evolution)",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&c.Agent, "agent", "", "the agent (required)")
	return cmd
}

// Run prints the policies.
func (c *PoliciesCommand) Run(ctx context.Context, w io.Writer, id string) error {
	if c.Agent == "" {
		return usagef("policies needs --agent: see `results policies --help`")
	}
	run, _, closeFn, err := c.loadRun(ctx, id)
	if err != nil {
		return err
	}
	defer closeFn()
	vs, err := run.Policies(c.Agent)
	if err != nil {
		return analysisErr(err)
	}
	if c.Format == "json" {
		return writeJSON(w, vs)
	}
	rows := make([][]string, len(vs))
	for i, v := range vs {
		it := strconv.Itoa(v.Iteration)
		if v.Final {
			it = "final"
		}
		rows[i] = []string{it, experiment.FormatParams(v.Params), yesNo(v.Accepted), string(v.Policy)}
		if c.Format == "table" {
			rows[i][3] = clip(rows[i][3], 60)
		}
	}
	if c.Format == "csv" {
		return writeCSV(w, []string{"iteration", "parameters", "accepted_in_iteration", "policy"}, rows)
	}
	return writeTable(w, []string{"ITER", "PARAMETERS", "ACCEPTED", "POLICY"}, escapeRows(rows))
}

func escapeRows(rows [][]string) [][]string {
	for i := range rows {
		rows[i] = escapeRow(rows[i])
	}
	return rows
}
