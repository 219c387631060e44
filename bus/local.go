package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/schema"
	"simcash/store"
)

// Local is a self-contained bus for one process: an in-process NATS server
// (no TCP port), the SIMCASH stream, and a persister writing to one DuckDB
// file. It is what `runner run` uses when no NATS URL is configured.
type Local struct {
	// Publisher publishes records; they reach the database asynchronously.
	Publisher *Publisher
	// JetStream gives direct access to the stream, e.g. for Tail.
	JetStream jetstream.JetStream

	srv     *Embedded
	nc      *nats.Conn
	st      *store.Store
	durable string
	cancel  context.CancelFunc
	done    chan error
}

// StartLocal starts an embedded server storing its stream in dir and a
// persister committing to dbPath. Records published before a crash are
// kept in dir and committed by the next StartLocal on the same dir.
//
//	l, err := bus.StartLocal(ctx, filepath.Join(out, ".nats"), filepath.Join(out, "results.db"))
//	if err != nil { ... }
//	defer l.Stop(ctx)
//	err = l.Publisher.Publish(ctx, rec)
func StartLocal(ctx context.Context, dir, dbPath string) (_ *Local, err error) {
	if dbPath == "" {
		return nil, errors.New("local bus: a database path is required")
	}
	l := &Local{durable: "persister-" + DBToken(dbPath), done: make(chan error, 1)}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		if store.IsLocked(err) {
			return nil, fmt.Errorf("database %s is in use by another process (a persister?): set SIMCASH_NATS_URL to publish to its bus instead: %w", dbPath, err)
		}
		return nil, err
	}
	l.st = st
	// On a loopback port with a token (see Host), so that `results` can
	// read the database through this process while the run holds it.
	if l.srv, err = Host(ctx, EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:0"}, ""); err != nil {
		return nil, err
	}
	if l.nc, err = l.srv.Connect(ctx, "simcash-local"); err != nil {
		return nil, err
	}
	if l.JetStream, err = NewJetStream(l.nc); err != nil {
		return nil, err
	}
	if _, err = EnsureStream(ctx, l.JetStream, 1); err != nil {
		return nil, err
	}
	l.Publisher = NewPublisher(l.JetStream)
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	go func() {
		l.done <- RunPersister(pctx, l.JetStream, st, PersisterOptions{Durable: l.durable, MaxWait: 20 * time.Millisecond, URL: l.srv.URL})
	}()
	return l, nil
}

// Stop waits until every published record is committed (or ctx ends),
// then stops the persister, the server and the database. Records not yet
// committed when ctx ends stay in the stream directory for the next run.
func (l *Local) Stop(ctx context.Context) error {
	waitErr := l.waitCommitted(ctx)
	l.cancel()
	runErr := <-l.done
	l.done <- runErr // Stop may be called twice
	return errors.Join(waitErr, runErr, l.close())
}

func (l *Local) waitCommitted(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case err := <-l.done:
			l.done <- err
			return err
		default:
		}
		// Committed means acked up to the stream's last record. The
		// consumer's NumPending is not used: right after the consumer is
		// created the server can report 0 before it has counted.
		if st, err := l.JetStream.Stream(ctx, StreamName); err == nil {
			if sinfo, err := st.Info(ctx); err == nil {
				last := sinfo.State.LastSeq
				if sinfo.State.Msgs == 0 {
					return nil
				}
				if c, err := st.Consumer(ctx, l.durable); err == nil {
					if info, err := c.Info(ctx); err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0 {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local bus: records not yet committed to %s are kept in the stream for the next run: %w", l.st.Path(), context.Cause(ctx))
		case <-t.C:
		}
	}
}

func (l *Local) close() error {
	var errs []error
	if l.nc != nil {
		_ = l.nc.FlushTimeout(time.Second) // push out the last acks
		l.nc.Close()
		l.nc = nil
	}
	if l.srv != nil {
		l.srv.Shutdown()
		l.srv = nil
	}
	if l.st != nil {
		errs = append(errs, l.st.Close())
		l.st = nil
	}
	return errors.Join(errs...)
}

// logger returns l or the default logger.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// PublishTo publishes records so that they are stored in the database at
// dbPath like every other record: through cfg.URL when set, else through
// the bus of the persister that holds the database, else through a local
// bus and persister started for the purpose (waiting until they are
// committed). It is for the few records a command writes by hand, such as
// `results mark`.
func PublishTo(ctx context.Context, dbPath string, cfg Config, records ...schema.Record) (where string, err error) {
	if cfg.URL == "" {
		if info, err := ReadInfo(dbPath); err == nil && info.URL != "" {
			cfg.URL = info.URL
		}
	}
	if cfg.URL != "" {
		nc, err := Connect(ctx, cfg)
		if err != nil {
			return "", fmt.Errorf("connect to %s: %w", cfg.URL, err)
		}
		defer nc.Drain()
		js, err := NewJetStream(nc)
		if err != nil {
			return "", err
		}
		p := NewPublisher(js)
		defer p.Close()
		for _, r := range records {
			if err := p.Publish(ctx, r); err != nil {
				return "", err
			}
		}
		return "published to " + cfg.URL, nil
	}
	dir := filepath.Join(filepath.Dir(dbPath), "."+filepath.Base(dbPath)+".nats")
	l, err := StartLocal(ctx, dir, dbPath)
	if err != nil {
		return "", err
	}
	for _, r := range records {
		if err := l.Publisher.Publish(ctx, r); err != nil {
			l.Stop(context.WithoutCancel(ctx))
			return "", err
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := l.Stop(sctx); err != nil {
		return "", fmt.Errorf("%w (uncommitted records are kept in %s)", err, dir)
	}
	return dbPath, os.RemoveAll(dir)
}
