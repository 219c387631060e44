package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configures an in-process NATS server with JetStream.
type EmbeddedOptions struct {
	// Dir holds the JetStream file store. Required: records survive a
	// restart of the process only if Dir is kept.
	Dir string
	// Listen is host:port for client connections, e.g. "127.0.0.1:4222";
	// port 0 picks a free port. "" opens no TCP port: only in-process
	// connections (Embedded.Connect) reach the server.
	Listen string
	// MaxPayload caps one message; default 8 MiB so that large LLM
	// interaction records fit.
	MaxPayload int32
	// Token, or User and Password, are required of every client when the
	// server listens on TCP; StartEmbedded refuses to listen without them.
	Token, User, Password string
	// TLSCert and TLSKey make the server speak TLS; required to listen on
	// an address other than loopback.
	TLSCert, TLSKey string
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	Server *server.Server
	// URL is the client URL ("nats://127.0.0.1:port"), or "" when the
	// server listens on no TCP port.
	URL string
	// Port is the TCP port in use (0 without Listen); restart on the same
	// Dir and Port to get the same server back.
	Port    int
	auth    Config // credentials for Connect
	cleanup func() // set by Host
}

// DefaultMaxPayload is the message size limit of embedded servers.
const DefaultMaxPayload = 8 << 20

// StartEmbedded starts a NATS server with JetStream storing in o.Dir and
// waits until it accepts connections.
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded NATS: a JetStream directory is required")
	}
	opts := &server.Options{
		ServerName: "simcash-embedded",
		JetStream:  true,
		StoreDir:   o.Dir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: o.MaxPayload,
		// Keep the server's own memory bounded; the stream is file-backed.
		JetStreamMaxMemory: 64 << 20,
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	if o.Listen == "" {
		opts.DontListen = true
	} else {
		if err := CheckListen(o.Listen, o.TLSCert != ""); err != nil {
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
		host, port, _ := ParseListen(o.Listen)
		if port == 0 {
			port = server.RANDOM_PORT // nats-server treats 0 as "default 4222"
		}
		opts.Host, opts.Port = host, port
		if o.Token == "" && o.User == "" {
			return nil, errors.New("embedded NATS: listening on TCP needs a token or user and password")
		}
		opts.Authorization, opts.Username, opts.Password = o.Token, o.User, o.Password
		if o.TLSCert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey})
			if err != nil {
				return nil, fmt.Errorf("embedded NATS: TLS certificate: %w", err)
			}
			opts.TLSConfig, opts.TLS = tc, true
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !s.ReadyForConnections(deadline) {
		s.Shutdown()
		if o.Listen != "" {
			return nil, fmt.Errorf("embedded NATS did not start on %s (port in use? pick another with --listen)", o.Listen)
		}
		return nil, errors.New("embedded NATS did not start")
	}
	e := &Embedded{Server: s, auth: Config{Token: o.Token, User: o.User, Password: o.Password}}
	if !opts.DontListen {
		if a, ok := s.Addr().(*net.TCPAddr); ok {
			e.Port = a.Port
		}
		e.URL = s.ClientURL()
	}
	return e, nil
}

// Connect opens a client connection to the embedded server (in-process,
// without TCP, when possible) that reconnects forever.
func (e *Embedded) Connect(ctx context.Context, name string) (*nats.Conn, error) {
	c := e.auth
	c.Name = name
	opts := c.options()
	if e.URL == "" {
		opts = append(opts, nats.InProcessServer(e.Server))
		return connectAndWait(ctx, "", 10*time.Second, opts)
	}
	return connectAndWait(ctx, e.URL, 10*time.Second, append(opts, nats.RetryOnFailedConnect(true)))
}

// Shutdown stops the server; JetStream flushes its store first.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
	if e.cleanup != nil {
		e.cleanup()
	}
}
