package main

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"simcash/store"
)

// IterationsCommand prints an experiment's iterations: costs per agent and
// which agents' proposals were accepted.
type IterationsCommand struct {
	dbOptions
}

func (c *IterationsCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "iterations ID",
		Short: "Show an experiment's iterations: total and per-agent cost, accepted changes",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	return cmd
}

// Run prints the iterations of experiment id to w.
func (c *IterationsCommand) Run(ctx context.Context, w io.Writer, id string) error {
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	its, err := r.Iterations(ctx, id)
	if err != nil {
		return notFound(err)
	}
	if c.Format == "json" {
		return writeJSON(w, its)
	}
	agents := agentsOf(its)
	human := c.Format == "table"
	header := []string{"ITER", "TOTAL"}
	if !human {
		header = []string{"iteration", "total_cost_cents"}
	}
	for _, a := range agents {
		if human {
			header = append(header, a)
		} else {
			header = append(header, "cost_cents["+a+"]")
		}
	}
	if human {
		header = append(header, "ACCEPTED", "TIME (UTC)")
	} else {
		header = append(header, "accepted", "timestamp", "policies")
	}
	rows := make([][]string, len(its))
	for i, it := range its {
		row := []string{strconv.Itoa(it.Iteration)}
		if human {
			row = append(row, dollars(it.TotalCost))
		} else {
			row = append(row, strconv.FormatInt(it.TotalCost, 10))
		}
		for _, a := range agents {
			v, ok := it.AgentCosts[a]
			switch {
			case !ok:
				row = append(row, "")
			case human:
				row = append(row, dollars(v))
			default:
				row = append(row, strconv.FormatInt(v, 10))
			}
		}
		var acc []string
		for _, a := range sortedKeys(it.AcceptedChanges) {
			if it.AcceptedChanges[a] {
				acc = append(acc, a)
			}
		}
		if human {
			s := strings.Join(acc, ",")
			if s == "" {
				s = "-"
			}
			row = append(row, s, timeStr(it.Timestamp))
		} else {
			row = append(row, strings.Join(acc, ";"), it.Timestamp.UTC().Format(time.RFC3339Nano), string(it.Policies))
		}
		rows[i] = row
	}
	if human {
		return writeTable(w, header, rows)
	}
	return writeCSV(w, header, rows)
}

// agentsOf returns every agent that has a cost in some iteration, sorted.
func agentsOf(its []store.IterationRow) []string {
	seen := map[string]bool{}
	for _, it := range its {
		for a := range it.AgentCosts {
			seen[a] = true
		}
	}
	return sortedKeys(seen)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
