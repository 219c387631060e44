package main

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"simcash/experiment"
)

type listCommand struct{}

func newListCommand() *cobra.Command {
	c := &listCommand{}
	return &cobra.Command{
		Use:   "list [DIR]",
		Short: "List the experiment files under DIR (default: the current directory)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return userErr("list takes at most one directory")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return c.Run(cmd.OutOrStdout(), dir)
		},
	}
}

// Run walks dir and prints every YAML file that loads as an experiment;
// scenario files and other YAML are skipped silently.
func (c *listCommand) Run(w io.Writer, dir string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "file\tname\tmode\tmodel\tagents\tdescription")
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != dir {
			return filepath.SkipDir
		}
		if d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return nil
		}
		cfg, _, err := experiment.Load(path, experiment.LoadOptions{})
		if err != nil {
			return nil // not an experiment file
		}
		n++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", path, cfg.Name, cfg.Evaluation.Mode, cfg.LLM.Model, strings.Join(cfg.OptimizedAgents, ","), cfg.Description)
		return nil
	})
	if err != nil {
		return usageError{fmt.Errorf("list %s: %w", dir, err)}
	}
	if n == 0 {
		return usageError{fmt.Errorf("no experiment files under %s", dir)}
	}
	return tw.Flush()
}
