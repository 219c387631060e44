package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"simcash/llm"

	"github.com/spf13/cobra"
)

type validateCommand struct{ strict bool }

func newValidateCommand() *cobra.Command {
	c := &validateCommand{}
	cmd := &cobra.Command{
		Use:   "validate EXPERIMENT.yaml",
		Short: "Check an experiment file, its scenario and its policies without running",
		Args:  exactArgs(1, "one experiment file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.Run(cmd.OutOrStdout(), args[0])
		},
	}
	cmd.Flags().BoolVar(&c.strict, "strict", false, "treat unknown keys as errors")
	return cmd
}

// Run loads everything the experiment needs and reports what it found.
func (c *validateCommand) Run(w io.Writer, path string) error {
	cfg, scn, err := loadExperiment(path, c.strict, nil)
	if err != nil {
		return err
	}
	_, optErr := newOptimizer(cfg)
	if optErr != nil && !errors.Is(optErr, llm.ErrNoAPIKey) {
		return optErr
	}
	fmt.Fprintf(w, "%s: ok — experiment %q, scenario %s (%d agents, %d ticks/day x %d days), mode %s, optimizer %s, agents %v\n",
		path, cfg.Name, cfg.Scenario, len(scn.Agents), scn.TicksPerDay, scn.NumDays, cfg.Evaluation.Mode, cfg.LLM.Model, cfg.OptimizedAgents)
	if optErr != nil {
		// Like the reference, checking a file needs no key; running it does.
		fmt.Fprintf(w, "note: %s (needed to run it, not to check it)\n", keyHint(optErr))
	}
	return nil
}

// keyHint is the missing-key message without the package prefix.
func keyHint(err error) string {
	return strings.TrimPrefix(errors.Unwrap(err).Error(), "llm: ")
}
