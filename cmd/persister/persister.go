package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"simcash/bus"
	"simcash/store"
)

// PersisterCommand is `persister --db FILE`: consume the SIMCASH stream into
// a DuckDB file until SIGINT/SIGTERM, then drain, commit and exit 0.
type PersisterCommand struct {
	DB       string
	Listen   string
	NATSURL  string
	Batch    int
	MaxWait  time.Duration
	LogLevel string
}

// NewPersisterCommand returns the command with its defaults.
func NewPersisterCommand() *PersisterCommand {
	return &PersisterCommand{Listen: "127.0.0.1:4222", Batch: 5000, MaxWait: 100 * time.Millisecond, LogLevel: "info"}
}

// Command builds the cobra command.
func (c *PersisterCommand) Command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "persister --db results/all.db",
		Short: "Consume simcash records from NATS JetStream into a DuckDB file",
		Long: `persister consumes the records that runners publish on the SIMCASH stream
(subjects simcash.>) into one DuckDB file, idempotently: each batch is one
transaction, acknowledged after its commit, so a crash at any point loses and
duplicates nothing.

Without a NATS URL (no --nats-url, no SIMCASH_NATS_URL) it hosts an embedded
NATS server on --listen, keeps its JetStream store next to the database
(<db>.jetstream/), and prints the URL runners should use. That server requires
credentials: SIMCASH_NATS_USER/PASSWORD or SIMCASH_NATS_TOKEN if set, else a
token it generates into <db>.nats-token (mode 0600, kept across restarts),
which runners and results on this machine find themselves. Listening beyond
loopback also needs TLS (SIMCASH_NATS_SERVER_TLS_CERT and _KEY). With a URL it joins
that server or cluster (credentials and TLS from SIMCASH_NATS_CREDS,
SIMCASH_NATS_USER/PASSWORD, SIMCASH_NATS_TOKEN, SIMCASH_NATS_TLS_CERT/KEY/CA;
stream replicas from SIMCASH_STREAM_REPLICAS).

While it runs it holds the database file; "results" then asks it for data
over NATS (it finds it through <db>.persister.json).

SIGINT or SIGTERM: stop pulling, commit what is held, exit 0.`,
		Example: `  persister --db results/all.db
  persister --db results/all.db --listen 127.0.0.1:0
  SIMCASH_NATS_URL=nats://nats1:4222,nats://nats2:4222 SIMCASH_STREAM_REPLICAS=3 persister --db /var/lib/simcash/all.db`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validate(cmd); err != nil {
				return usageError{err}
			}
			return c.Run(cmd.Context())
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := cmd.Flags()
	f.StringVar(&c.DB, "db", "", "DuckDB file to write (created if missing; required)")
	f.StringVar(&c.Listen, "listen", c.Listen, "host:port of the embedded NATS server when no URL is set; port 0 picks a free one")
	f.StringVar(&c.NATSURL, "nats-url", "", "join this NATS server or cluster instead of hosting one (default $SIMCASH_NATS_URL)")
	f.IntVar(&c.Batch, "batch", c.Batch, "most records per DuckDB transaction")
	f.DurationVar(&c.MaxWait, "max-wait", c.MaxWait, "longest a partial batch waits before it is committed")
	f.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	return cmd
}

func (c *PersisterCommand) validate(cmd *cobra.Command) error {
	if c.DB == "" {
		return errors.New("--db is required, e.g. --db results/all.db")
	}
	if c.Batch < 1 {
		return fmt.Errorf("--batch %d: must be at least 1", c.Batch)
	}
	if c.MaxWait <= 0 {
		return fmt.Errorf("--max-wait %s: must be positive", c.MaxWait)
	}
	if _, _, err := bus.ParseListen(c.Listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if c.NATSURL != "" && cmd.Flags().Changed("listen") {
		return errors.New("--listen hosts a server and --nats-url joins one: give only one")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
	return nil
}

// Run persists until ctx ends.
func (c *PersisterCommand) Run(ctx context.Context) (err error) {
	cfg, err := bus.LoadConfig()
	if err != nil {
		return usageError{err}
	}
	if c.NATSURL != "" {
		cfg.URL = c.NATSURL
	}
	if cfg.Name == "" {
		cfg.Name = "simcash-persister"
	}

	if cfg.URL == "" {
		if err := bus.CheckListen(c.Listen, cfg.ServerTLSCert != ""); err != nil {
			return usageError{err} // before the database is touched
		}
	}
	// The lost-after time of the runs it reports to `results` (SIMCASH_LOST_AFTER).
	var lost struct {
		After time.Duration `envconfig:"LOST_AFTER"`
	}
	if err := envconfig.Process("SIMCASH", &lost); err != nil {
		return usageError{err}
	}
	st, err := store.Open(ctx, c.DB, store.WithLostAfter(lost.After))
	if err != nil {
		if errors.Is(err, store.ErrBadPath) {
			return usageError{err}
		}
		if store.IsLocked(err) {
			return fmt.Errorf("%s is held by another process (another persister, or a reader such as the duckdb shell; results reads through a running persister): one writer per database: %w", c.DB, err)
		}
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()

	var nc *nats.Conn
	url := cfg.URL
	if cfg.URL == "" {
		srv, err := bus.Host(ctx, bus.EmbeddedOptions{Dir: c.DB + ".jetstream", Listen: c.Listen,
			Token: cfg.Token, User: cfg.User, Password: cfg.Password,
			TLSCert: cfg.ServerTLSCert, TLSKey: cfg.ServerTLSKey}, c.DB)
		if errors.Is(err, bus.ErrExposed) {
			return usageError{err}
		}
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url = srv.URL
		if nc, err = srv.Connect(ctx, cfg.Name); err != nil {
			return err
		}
		slog.Info("hosting embedded NATS", "url", url, "jetstream_dir", c.DB+".jetstream")
		fmt.Printf("NATS is listening; point runners at it with:\n  export SIMCASH_NATS_URL=%s\n", url)
		if cfg.Token == "" && cfg.User == "" {
			fmt.Printf("Clients need the token in %s (mode 0600): runners and results on this machine\n"+
				"find it themselves; elsewhere, export SIMCASH_NATS_TOKEN=\"$(cat %s)\"\n", bus.TokenFile(c.DB), bus.TokenFile(c.DB))
		}
	} else if nc, err = bus.Connect(ctx, cfg); err != nil {
		return err
	}
	defer func() {
		// Acks are sent asynchronously: push them out before closing.
		_ = nc.FlushTimeout(5 * time.Second)
		nc.Close()
	}()

	js, err := bus.NewJetStream(nc)
	if err != nil {
		return err
	}
	if err := ensureStream(ctx, js, cfg); err != nil {
		return err
	}
	return bus.RunPersister(ctx, js, st, bus.PersisterOptions{URL: url, BatchSize: c.Batch, MaxWait: c.MaxWait})
}

// ensureStream retries while a cluster elects its meta leader after a
// cold start, for at most the connect timeout.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg bus.Config) error {
	deadline := time.Now().Add(max(cfg.ConnectTimeout, 5*time.Second))
	for {
		_, err := bus.EnsureStream(ctx, js, cfg.StreamReplicas)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		slog.Warn("stream not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
