package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"simcash/analysis"
	"simcash/store"
)

// runSelection is how chart and compare name their runs: ids, or every run
// of a name or a config hash.
type runSelection struct {
	Name  string
	Hash  string
	Sweep string
}

func (s *runSelection) registerSelection(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.Name, "name", "", "every run of this experiment name (or glob)")
	cmd.Flags().StringVar(&s.Hash, "hash", "", "every run whose config hash starts with this")
	cmd.Flags().StringVar(&s.Sweep, "sweep", "", "every run of this sweep (runner sweep)")
}

// load resolves the selection and loads the runs, oldest first.
func (s *runSelection) load(ctx context.Context, r store.Reader, ids []string) ([]*analysis.Run, error) {
	filtered := s.Name != "" || s.Hash != "" || s.Sweep != ""
	if len(ids) > 0 && filtered || len(ids) == 0 && !filtered {
		return nil, usagef("name the runs: IDs, or --name NAME, --hash HASH or --sweep ID")
	}
	if len(ids) == 0 {
		list, err := r.List(ctx, store.ListOptions{Name: s.Name, ConfigHash: s.Hash, Sweep: s.Sweep, Sort: "started_at"})
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, usagef("no runs match --name %q --hash %q --sweep %q (see `results list`)", s.Name, s.Hash, s.Sweep)
		}
		for _, e := range list {
			ids = append(ids, e.ExperimentID)
		}
	}
	runs, err := analysis.LoadAll(ctx, r, ids)
	return runs, analysisErr(err)
}

// analysisErr makes the caller's mistakes usage errors (exit 2).
func analysisErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, analysis.ErrBadArgument), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidRequest):
		return usageErr(err)
	}
	return err
}

// loadRuns opens the database and loads the selected runs; call closeFn
// when done.
func (o *dbOptions) loadRuns(ctx context.Context, sel *runSelection, ids []string) ([]*analysis.Run, func(), error) {
	r, closeFn, err := o.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	runs, err := sel.load(ctx, r, ids)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return runs, closeFn, nil
}

// loadRun opens the database and loads one run.
func (o *dbOptions) loadRun(ctx context.Context, id string) (*analysis.Run, store.Reader, func(), error) {
	r, closeFn, err := o.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	run, err := analysis.Load(ctx, r, id)
	if err != nil {
		closeFn()
		return nil, nil, nil, analysisErr(err)
	}
	return run, r, closeFn, nil
}

// iterRange parses --iterations "3:7", "3:", ":7" or "5".
func iterRange(s string) (from, to int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, ":")
	if !isRange {
		b = a
	}
	parse := func(t string) (int, error) {
		if t == "" {
			return 0, nil
		}
		var n int
		if _, err := fmt.Sscanf(t, "%d", &n); err != nil || n < 1 || fmt.Sprint(n) != t {
			return 0, usagef("--iterations %q: use FROM:TO with iteration numbers from 1, e.g. 3:7", s)
		}
		return n, nil
	}
	if from, err = parse(a); err != nil {
		return 0, 0, err
	}
	if to, err = parse(b); err != nil {
		return 0, 0, err
	}
	if to > 0 && from > to {
		return 0, 0, usagef("--iterations %q: FROM is after TO", s)
	}
	return from, to, nil
}
