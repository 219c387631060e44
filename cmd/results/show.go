package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"simcash/analysis"
	"simcash/store"
)

// ShowCommand prints one experiment: config, status, costs, final policies.
type ShowCommand struct {
	dbOptions
}

func (c *ShowCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one experiment: config, status, final and best cost, final policies",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	return cmd
}

// Run prints experiment id to w.
func (c *ShowCommand) Run(ctx context.Context, w io.Writer, id string) error {
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	d, err := r.Show(ctx, id)
	if err != nil {
		return notFound(err)
	}
	switch c.Format {
	case "json":
		return writeJSON(w, d)
	case "csv":
		var rows [][]string
		for _, f := range showFields(d, false) {
			rows = append(rows, []string{f[0], f[1]})
		}
		return writeCSV(w, []string{"field", "value"}, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range showFields(d, true) {
		// Stored text may hold terminal escapes: print it as text.
		fmt.Fprintf(tw, "%s:\t%s\n", analysis.Printable(f[0]), analysis.Printable(f[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	cfg, scn := splitScenario(d.Config)
	fmt.Fprintf(w, "\nFinal policies:\n%s\nConfig:\n%s\n", printableLines(indentJSON(d.FinalPolicies)), printableLines(indentJSON(cfg)))
	if scn != "" {
		fmt.Fprintf(w, "\nScenario (%s, as recorded):\n%s", analysis.Printable(d.Scenario), printableLines(indentText(scn)))
	}
	return nil
}

// showFields lists an experiment's fields as name/value pairs; for people
// costs are dollars, for programs cents and the JSON documents inline.
func showFields(d *store.ExperimentDetail, human bool) [][2]string {
	cost, when := centsPtr, rfc3339
	if human {
		cost, when = dollarsPtr, timePtr
	}
	started := d.StartedAt
	dur := ""
	if d.DurationSeconds != nil {
		dur = strconv.FormatFloat(*d.DurationSeconds, 'f', 1, 64)
		if human {
			dur += " s"
		}
	}
	conv := strconv.FormatBool(d.Converged)
	if human {
		conv = yesNo(d.Converged)
		if d.ConvergenceReason != "" {
			conv += " (" + d.ConvergenceReason + ")"
		}
	}
	fields := [][2]string{
		{"experiment_id", d.ExperimentID},
		{"experiment_name", d.ExperimentName},
		{"experiment_type", d.ExperimentType},
		{"status", d.Status},
		{"model", d.Model},
		{"scenario", d.Scenario},
		{"master_seed", strconv.FormatInt(d.MasterSeed, 10)},
		{"started_at", when(&started)},
		{"completed_at", when(d.CompletedAt)},
		{"total_duration_seconds", dur},
		{"num_iterations", strconv.Itoa(d.NumIterations)},
		{"converged", conv},
	}
	if !human {
		fields = append(fields, [2]string{"convergence_reason", d.ConvergenceReason})
	}
	name := func(s string) string {
		if human {
			return s
		}
		return s + "_cents"
	}
	fields = append(fields, [2]string{name("final_cost"), cost(d.FinalCost)}, [2]string{name("best_cost"), cost(d.BestCost)})
	agents := make([]string, 0, len(d.AgentFinalCosts))
	for a := range d.AgentFinalCosts {
		agents = append(agents, a)
	}
	slices.Sort(agents)
	for _, a := range agents {
		v := d.AgentFinalCosts[a]
		fields = append(fields, [2]string{name("final_cost") + " [" + a + "]", cost(&v)})
	}
	fields = append(fields,
		[2]string{"llm_calls", strconv.FormatInt(d.LLMCalls, 10)},
		[2]string{"prompt_tokens", strconv.FormatInt(d.PromptTokens, 10)},
		[2]string{"completion_tokens", strconv.FormatInt(d.CompletionTokens, 10)},
		[2]string{"program_version", d.ProgramVersion},
		[2]string{"program_commit", d.ProgramCommit},
		[2]string{"host", d.Host},
		[2]string{"config_hash", d.ConfigHash})
	if !human {
		fields = append(fields, [2]string{"final_policies", string(d.FinalPolicies)}, [2]string{"config", string(d.Config)})
	}
	if human {
		for i := range fields {
			if fields[i][0] == "total_duration_seconds" {
				fields[i][0] = "duration"
			}
			// Only the field's own name: agent ids keep their underscores.
			n, agent, _ := strings.Cut(fields[i][0], " [")
			fields[i][0] = strings.ReplaceAll(n, "_", " ")
			if agent != "" {
				fields[i][0] += " [" + agent
			}
		}
	}
	return fields
}

func indentJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "  (none)"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "  ", "  "); err != nil {
		return "  " + string(raw)
	}
	return "  " + b.String()
}

// splitScenario takes the recorded scenario text out of a config, to be
// shown as YAML rather than one long JSON string.
func splitScenario(cfg json.RawMessage) (json.RawMessage, string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(cfg, &m) != nil {
		return cfg, ""
	}
	var text string
	if json.Unmarshal(m["scenario_content"], &text) != nil || text == "" {
		return cfg, ""
	}
	delete(m, "scenario_content")
	b, err := json.Marshal(m)
	if err != nil {
		return cfg, ""
	}
	return b, text
}

func indentText(s string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "  ") + "\n"
}

// printableLines escapes each line of s but keeps its line breaks.
func printableLines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		lines[i] = analysis.Printable(strings.TrimSuffix(l, "\n"))
		if strings.HasSuffix(l, "\n") {
			lines[i] += "\n"
		}
	}
	return strings.Join(lines, "")
}
