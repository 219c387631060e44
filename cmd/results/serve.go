package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"simcash/bus"
	"simcash/store"
	"simcash/web"
)

// ServeCommand runs the web dashboard.
type ServeCommand struct {
	dbOptions
	Listen string
	Token  string
}

type webEnv struct {
	Token string `envconfig:"WEB_TOKEN"` // SIMCASH_WEB_TOKEN
}

func (c *ServeCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a live web dashboard of the results: runs, charts, comparison, audit, live feed",
		Long: `Serve the results database as a web dashboard: the runs (filter, sort, compare the
ticked ones), one run (configuration, convergence charts, iterations, evaluations with their
statistics, final policies), its audit trail (prompts, answers, parsed policies, validation
errors, tokens, latency, decisions, policy changes) and a live feed of records. Pages update
as records cross the bus when a persister holds the database (or SIMCASH_NATS_URL names the
bus). Every page has its JSON under /api/ (see the README).

The database is opened per request, so a persister can start or stop at any time. The
dashboard listens on loopback by default; any other address needs --token (or
SIMCASH_WEB_TOKEN), which browsers pass once as ?token= and then keep in a cookie.`,
		Example: `  results serve --db results/all.db
  results serve --listen 0.0.0.0:8080 --token "$(openssl rand -hex 16)"`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	var e webEnv
	_ = envconfig.Process("SIMCASH", &e)
	cmd.Flags().StringVar(&c.DB, "db", defaultDB(), "results database (env SIMCASH_DB)")
	cmd.Flags().StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address to serve on (host:port; port 0 picks one)")
	cmd.Flags().StringVar(&c.Token, "token", e.Token, "token every request must carry (env SIMCASH_WEB_TOKEN); required off loopback")
	return cmd
}

// Run serves until ctx ends.
func (c *ServeCommand) Run(ctx context.Context, w io.Writer) error {
	c.Format = "table"
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return usagef("--listen %q: want host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if !isLoopback(host) && c.Token == "" {
		return usagef("--listen %s is reachable from other machines: pass --token (or set SIMCASH_WEB_TOKEN), e.g. --token %s", c.Listen, randomToken())
	}
	// Fail early on a missing or foreign database.
	_, closeFn, err := c.open(ctx)
	if err != nil {
		return err
	}
	closeFn()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return usagef("--listen %s: %v", c.Listen, err)
	}
	opts := []web.Option{web.WithLive(c.live)}
	if c.Token != "" {
		opts = append(opts, web.WithToken(c.Token))
	}
	srv := web.New(c.openRetry, opts...)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Run(ctx)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		hs.Shutdown(sctx)
	}()
	addr := "http://" + ln.Addr().String() + "/"
	if c.Token != "" {
		addr += "?token=" + url.QueryEscape(c.Token)
	}
	fmt.Fprintf(w, "serving %s at %s\n", c.DB, addr)
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openRetry opens the results for one request, trying once more after a
// moment when a persister that holds the database did not answer in time
// (a busy machine), rather than showing an error page.
func (c *ServeCommand) openRetry(ctx context.Context) (store.Reader, func(), error) {
	r, closeFn, err := c.open(ctx)
	if err == nil || isUsage(err) {
		return r, closeFn, err
	}
	select {
	case <-ctx.Done():
		return nil, nil, err
	case <-time.After(250 * time.Millisecond):
	}
	return c.open(ctx)
}

// live tails the bus of the persister that holds the database (or
// SIMCASH_NATS_URL), until ctx ends or the connection fails.
func (c *ServeCommand) live(ctx context.Context, fn func(subject string, data []byte)) error {
	nc, js, err := connectBus(ctx, c.DB, "", "simcash-results-serve")
	if errors.Is(err, errNoBus) {
		return web.ErrNoBus // no persister holds the database (yet)
	}
	if err != nil {
		return err
	}
	defer nc.Close()
	slog.Debug("live updates from the bus", "url", nc.ConnectedUrlRedacted())
	return bus.Tail(ctx, js, bus.TailSubject("", ""), func(m jetstream.Msg) error {
		fn(m.Subject(), m.Data())
		return nil
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
