package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"simcash/analysis"
	"simcash/bus"
	"simcash/schema"
)

func init() {
	extraCommands = append(extraCommands, func() *cobra.Command { return (&TailCommand{}).command() })
}

// TailCommand is `results tail`: records as they are published, live from
// the bus, until interrupted.
type TailCommand struct {
	DB         string
	NATSURL    string
	Experiment string
	Type       string
	Format     string
	Since      time.Duration
}

func (c *TailCommand) command() *cobra.Command {
	var e env
	if err := envconfig.Process("SIMCASH", &e); err != nil {
		e.DB = "results/all.db"
	}
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print records live from the bus as runners publish them",
		Long: `tail prints records live from the NATS stream as runners publish them,
until interrupted. It reads the bus, not the database, and disturbs no
persister. The bus is --nats-url, else $SIMCASH_NATS_URL, else the server of
the persister that holds --db.`,
		Example: `  results tail
  results tail --experiment exp1-20261125-120000-a1b2c3 --type iteration
  results tail --type llm_interaction --format json`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.DB, "db", e.DB, "results database whose persister hosts the bus (env SIMCASH_DB)")
	f.StringVar(&c.NATSURL, "nats-url", "", "NATS server (default $SIMCASH_NATS_URL)")
	f.StringVar(&c.Experiment, "experiment", "", "only this experiment id")
	f.StringVar(&c.Type, "type", "", "only this record kind (started, iteration, evaluation, event, completed) or event type (e.g. llm_interaction)")
	f.StringVar(&c.Format, "format", "table", "output format: table or json (one object per line)")
	f.DurationVar(&c.Since, "since", 0, "also print records stored this long ago, e.g. 10m (default: new records only)")
	return cmd
}

// Run tails until ctx ends.
func (c *TailCommand) Run(ctx context.Context, w io.Writer) error {
	switch {
	case c.Format != "table" && c.Format != "json":
		return usagef("unknown --format %q: use table or json", c.Format)
	case c.Experiment != "" && !schema.ValidID(c.Experiment):
		return usagef("--experiment %q is not an experiment id", c.Experiment)
	case c.Type != "" && !schema.ValidID(c.Type):
		return usagef("--type %q: use a record kind or an event type, e.g. iteration or llm_interaction", c.Type)
	case c.Since < 0:
		return usagef("--since %s: must be positive", c.Since)
	}
	nc, js, err := connectBus(ctx, c.DB, c.NATSURL, "simcash-results-tail")
	if errors.Is(err, errNoBus) {
		return usagef("no bus to tail: set SIMCASH_NATS_URL or --nats-url, or start a persister for --db %s", c.DB)
	}
	if err != nil {
		return err
	}
	defer nc.Close()
	var opts []bus.TailOpt
	if c.Since > 0 {
		opts = append(opts, bus.TailSince(time.Now().Add(-c.Since)))
	}
	if c.Format == "table" {
		fmt.Fprintf(w, "%-19s  %-36s  %-22s  %s\n", "TIME (UTC)", "EXPERIMENT", "RECORD", "SUMMARY")
	}
	return bus.Tail(ctx, js, bus.TailSubject(c.Experiment, c.Type), func(m jetstream.Msg) error {
		if c.Format == "json" {
			return tailJSON(w, m)
		}
		return tailRow(w, m)
	}, opts...)
}

// tailJSON writes one line: the subject, the stream sequence and the wire
// record (or why it could not be read).
func tailJSON(w io.Writer, m jetstream.Msg) error {
	line := struct {
		Subject string          `json:"subject"`
		Seq     uint64          `json:"stream_seq,omitempty"`
		Record  json.RawMessage `json:"record,omitempty"`
		Error   string          `json:"error,omitempty"`
	}{Subject: m.Subject()}
	if md, err := m.Metadata(); err == nil {
		line.Seq = md.Sequence.Stream
	}
	if json.Valid(m.Data()) {
		line.Record = m.Data()
	} else {
		line.Error = "not JSON"
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func tailRow(w io.Writer, m jetstream.Msg) error {
	when := time.Now()
	if md, err := m.Metadata(); err == nil {
		when = md.Timestamp
	}
	r, err := schema.Decode(m.Data())
	if err != nil {
		_, err = fmt.Fprintf(w, "%-19s  %-36s  %-22s  %s\n", timeStr(when), "?", "unreadable", analysis.Printable(clip(m.Subject()+": "+err.Error(), 100)))
		return err
	}
	kind, summary := analysis.Describe(r)
	_, err = fmt.Fprintf(w, "%-19s  %-36s  %-22s  %s\n", timeStr(when), r.ExperimentID(), kind, summary)
	return err
}
