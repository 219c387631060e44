package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
)

// EnvPrefix is the prefix of every environment variable Config reads.
const EnvPrefix = "SIMCASH"

// Config says how to reach NATS. LoadConfig fills it from SIMCASH_*
// environment variables; command-line flags may override fields afterwards.
type Config struct {
	// URL of one or more NATS servers, comma separated. Empty means "no
	// shared bus": commands host an embedded server instead.
	URL string `envconfig:"NATS_URL"`
	// Creds is a NATS credentials (JWT + seed) file.
	Creds    string `envconfig:"NATS_CREDS"`
	User     string `envconfig:"NATS_USER"`
	Password string `envconfig:"NATS_PASSWORD"`
	Token    string `envconfig:"NATS_TOKEN"`
	// TLSCert and TLSKey are a client certificate for mutual TLS; TLSCA
	// verifies the server.
	TLSCert string `envconfig:"NATS_TLS_CERT"`
	// ServerTLSCert and ServerTLSKey are the certificate of a server a
	// persister hosts (needed to listen beyond loopback).
	ServerTLSCert string `envconfig:"NATS_SERVER_TLS_CERT"`
	ServerTLSKey  string `envconfig:"NATS_SERVER_TLS_KEY"`
	TLSKey        string `envconfig:"NATS_TLS_KEY"`
	TLSCA         string `envconfig:"NATS_TLS_CA"`
	// StreamReplicas is the replica count of the SIMCASH stream: 1 for a
	// single server, 3 in a cluster.
	StreamReplicas int `envconfig:"STREAM_REPLICAS" default:"1"`
	// ConnectTimeout bounds the wait for the first connection; after that
	// the client reconnects forever.
	ConnectTimeout time.Duration `envconfig:"NATS_CONNECT_TIMEOUT" default:"30s"`
	// Name identifies the client in server monitoring.
	Name string `envconfig:"NATS_CLIENT_NAME"`
}

// LoadConfig reads Config from the environment (SIMCASH_NATS_URL, ...).
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process(EnvPrefix, &c); err != nil {
		return Config{}, fmt.Errorf("read %s_* environment: %w", EnvPrefix, err)
	}
	return c, c.Validate()
}

// Validate reports configuration that cannot work, saying what to fix.
func (c Config) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("SIMCASH_NATS_TLS_CERT and SIMCASH_NATS_TLS_KEY must be set together")
	}
	if c.Token != "" && (c.User != "" || c.Creds != "") {
		return errors.New("set only one of SIMCASH_NATS_TOKEN, SIMCASH_NATS_USER/PASSWORD or SIMCASH_NATS_CREDS")
	}
	if c.StreamReplicas < 0 || c.StreamReplicas > 5 {
		return fmt.Errorf("SIMCASH_STREAM_REPLICAS=%d: must be between 1 and 5", c.StreamReplicas)
	}
	return nil
}

// options turns the configuration into nats.go options. The client
// reconnects forever so that a server restart never ends a run.
func (c Config) options() []nats.Option {
	name := c.Name
	if name == "" {
		name = "simcash"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Keep publishing while reconnecting; requests wait in this buffer.
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				slog.Warn("nats disconnected; reconnecting", "servers", servers(nc), "err", err)
			}
		}),
		// Asynchronous errors (slow consumer, permissions) go to the log,
		// not to bare stderr.
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			args := []any{"servers", servers(nc), "err", err}
			if sub != nil {
				args = append(args, "subject", sub.Subject)
			}
			slog.Warn("nats error", args...)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			slog.Info("nats reconnected", "url", redactURL(nc.ConnectedUrl()))
		}),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	return opts
}

// Connect connects to c.URL and waits until the connection is up, at most
// c.ConnectTimeout (or until ctx ends). Once connected the client
// reconnects forever.
func Connect(ctx context.Context, c Config) (*nats.Conn, error) {
	if c.URL == "" {
		return nil, errors.New("no NATS URL: set SIMCASH_NATS_URL (or --nats-url)")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withLocalToken()
	opts := append(c.options(), nats.RetryOnFailedConnect(true))
	return connectAndWait(ctx, c.URL, c.ConnectTimeout, opts)
}

func connectAndWait(ctx context.Context, url string, timeout time.Duration, opts []nats.Option) (*nats.Conn, error) {
	up := make(chan struct{}, 1)
	signal := func(*nats.Conn) {
		select {
		case up <- struct{}{}:
		default:
		}
	}
	// With RetryOnFailedConnect the first successful connect is reported
	// through the ConnectHandler; an immediate success is seen by IsConnected.
	opts = append(opts, nats.ConnectHandler(signal))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	if nc.IsConnected() {
		return nc, nil
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	slog.Info("waiting for NATS", "url", redactURL(url))
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("connect to NATS at %s: %w (is the server running? check SIMCASH_NATS_URL and credentials)", redactURL(url), context.Cause(ctx))
		case <-up:
		case <-t.C:
		}
	}
	return nc, nil
}

// servers names the servers nc may connect to, for logs.
func servers(nc *nats.Conn) string {
	if nc.Opts.Url != "" {
		return redactURL(nc.Opts.Url)
	}
	if len(nc.Opts.Servers) > 0 {
		return redactURL(strings.Join(nc.Opts.Servers, ","))
	}
	return "in-process"
}

// redactURL drops credentials from a URL before it is logged or written.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
