package main

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"simcash/schema"
	"simcash/store"
)

// EventsCommand prints an experiment's event log.
type EventsCommand struct {
	dbOptions
	Type      string
	Iteration int
	Full      bool
}

func (c *EventsCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events ID",
		Short: "Show an experiment's events in order",
		Args:  args("ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout(), a[0])
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&c.Type, "type", "", "only events of this type, e.g. llm_interaction")
	cmd.Flags().IntVar(&c.Iteration, "iteration", 0, "only events of this iteration (0: all)")
	cmd.Flags().BoolVar(&c.Full, "full", false, "show each event's data whole (the table cuts it after whole fields)")
	return cmd
}

// Run prints the events of experiment id to w.
func (c *EventsCommand) Run(ctx context.Context, w io.Writer, id string) error {
	if c.Type != "" && !schema.ValidID(c.Type) {
		return usagef("--type %q is not an event type: use letters, digits, '_' or '-', e.g. llm_interaction", c.Type)
	}
	r, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	evs, err := r.Events(ctx, id, store.EventFilter{Type: c.Type, Iteration: c.Iteration})
	if err != nil {
		return notFound(err)
	}
	if len(evs) == 0 && c.Type != "" {
		if err := c.checkType(ctx, r, id); err != nil {
			return err
		}
	}
	switch c.Format {
	case "json":
		return writeJSON(w, evs)
	case "csv":
		rows := make([][]string, len(evs))
		for i, e := range evs {
			rows[i] = []string{strconv.FormatInt(e.Seq, 10), strconv.Itoa(e.Iteration), e.EventType,
				e.Timestamp.UTC().Format(time.RFC3339Nano), string(e.Data)}
		}
		return writeCSV(w, []string{"seq", "iteration", "event_type", "timestamp", "data"}, rows)
	}
	rows := make([][]string, len(evs))
	for i, e := range evs {
		rows[i] = []string{strconv.FormatInt(e.Seq, 10), strconv.Itoa(e.Iteration), e.EventType,
			timeStr(e.Timestamp), string(e.Data)}
		if !c.Full {
			rows[i][4] = clipJSON(rows[i][4], 80)
		}
	}
	return writeTable(w, []string{"SEQ", "ITER", "TYPE", "TIME (UTC)", "DATA"}, rows)
}

// checkType refuses a --type the experiment has no events of at all (a
// misspelling, most likely), naming the types it has.
func (c *EventsCommand) checkType(ctx context.Context, r store.Reader, id string) error {
	all, err := r.Events(ctx, id, store.EventFilter{})
	if err != nil {
		return notFound(err)
	}
	var types []string
	for _, e := range all {
		if e.EventType == c.Type {
			return nil
		}
		types = append(types, e.EventType)
	}
	slices.Sort(types)
	return usagef("experiment %s has no events of type %q (it has: %s)", id, c.Type, strings.Join(slices.Compact(types), ", "))
}

// clipJSON shortens a one-line JSON object to about n bytes, cutting
// between fields so that no field is shown without its value.
func clipJSON(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := -1
	for i := 0; i < n-4 && i < len(s); i++ {
		if s[i] == ',' && i+1 < len(s) && s[i+1] == '"' {
			cut = i
		}
	}
	if cut < 0 { // one long field: cut inside it, marked
		return clip(s, n)
	}
	return s[:cut] + ",…}"
}
