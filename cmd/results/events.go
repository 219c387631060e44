package main

import (
	"context"
	"io"
	"strconv"
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
			timeStr(e.Timestamp), clip(string(e.Data), 80)}
	}
	return writeTable(w, []string{"SEQ", "ITER", "TYPE", "TIME (UTC)", "DATA"}, rows)
}
