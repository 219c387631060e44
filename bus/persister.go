package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"simcash/store"
)

// PersisterOptions configures RunPersister. Zero values take the defaults.
type PersisterOptions struct {
	// Durable names the consumer (default "persister-<db token>", so each
	// database file has its own position in the stream).
	Durable string
	// BatchSize, MaxWait, AckWait and MaxAckPending tune the consumer; see
	// ConsumerOptions.
	BatchSize     int
	MaxWait       time.Duration
	AckWait       time.Duration
	MaxAckPending int
	// URL is the NATS URL that the results tool should use to reach this
	// persister; it is written to <db>.persister.json. "" (an in-process
	// server) writes no file: queries cannot reach this process then.
	URL string
	// SummaryEvery is the period of the info-level progress line (default 1m).
	SummaryEvery time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// PersisterInfo is the content of <db>.persister.json, which tells the
// results tool where to send queries while the persister holds the file.
type PersisterInfo struct {
	URL       string    `json:"nats_url"`
	Subject   string    `json:"query_subject"`
	DB        string    `json:"db"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

// InfoFile returns the path of the persister info file for dbPath.
func InfoFile(dbPath string) string { return store.CanonicalPath(dbPath) + ".persister.json" }

// ReadInfo reads the persister info file for dbPath.
func ReadInfo(dbPath string) (PersisterInfo, error) {
	var pi PersisterInfo
	b, err := os.ReadFile(InfoFile(dbPath))
	if err != nil {
		return pi, fmt.Errorf("no running persister found for %s: %w", dbPath, err)
	}
	if err := json.Unmarshal(b, &pi); err != nil {
		return pi, fmt.Errorf("read %s: %w (delete the file if no persister runs)", InfoFile(dbPath), err)
	}
	return pi, nil
}

// DBToken names a database file in subjects and consumer names: its base
// name reduced to subject-safe characters plus a hash of its absolute path,
// so that two all.db files in different directories do not collide.
func DBToken(dbPath string) string {
	abs := store.CanonicalPath(dbPath)
	sum := sha256.Sum256([]byte(abs))
	base := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, filepath.Base(abs))
	return base + "-" + hex.EncodeToString(sum[:4])
}

// QuerySubject is the request/reply subject on which the persister of
// dbPath answers read queries. It lies outside simcash.> so that queries
// are not stored in the stream.
func QuerySubject(dbPath string) string { return "simcashapi." + DBToken(dbPath) + ".query" }

// persisterStats counts what a persister has done, for its log lines.
type persisterStats struct {
	Batches     int64
	Messages    int64
	Inserted    int64
	DeadLetters int64
	Conflicts   int64
	Failures    int64
}

// RunPersister consumes the SIMCASH stream into st until ctx ends: one
// DuckDB transaction per batch, acked after the commit. It answers read
// queries for the results tool on QuerySubject(st.Path()) and, when o.URL
// is set, advertises itself in <db>.persister.json (removed on return).
// On shutdown it commits what it holds and returns nil.
func RunPersister(ctx context.Context, js jetstream.JetStream, st *store.Store, o PersisterOptions) error {
	log := logger(o.Logger)
	if o.Durable == "" {
		o.Durable = "persister-" + DBToken(st.Path())
	}
	if o.SummaryEvery <= 0 {
		o.SummaryEvery = time.Minute
	}

	stopQueries, err := serveQueries(ctx, js.Conn(), QuerySubject(st.Path()), st, log)
	if err != nil {
		return err
	}
	defer stopQueries()
	if o.URL != "" {
		abs, err := filepath.Abs(st.Path())
		if err != nil {
			abs = st.Path()
		}
		if err := writeInfo(st.Path(), PersisterInfo{
			URL: redactURL(o.URL), Subject: QuerySubject(st.Path()), DB: abs,
			PID: os.Getpid(), StartedAt: time.Now().UTC(),
		}); err != nil {
			return err
		}
		defer os.Remove(InfoFile(st.Path()))
	}

	var (
		mu    sync.Mutex
		stats persisterStats
	)
	summary := func(msg string) {
		mu.Lock()
		s := stats
		mu.Unlock()
		log.Info(msg, "db", st.Path(), "batches", s.Batches, "messages", s.Messages,
			"inserted", s.Inserted, "duplicates", s.Messages-s.Inserted-s.DeadLetters,
			"dead_letters", s.DeadLetters, "conflicts", s.Conflicts, "failed_batches", s.Failures)
	}
	tick := time.NewTicker(o.SummaryEvery)
	defer tick.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				summary("persister progress")
			}
		}
	}()

	handler := func(ctx context.Context, msgs []jetstream.Msg) error {
		batch := make([]store.Message, len(msgs))
		for i, m := range msgs {
			batch[i] = store.Message{Subject: m.Subject(), Data: m.Data()}
		}
		start := time.Now()
		res, err := st.WriteBatch(ctx, batch)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			stats.Failures++
			err = fmt.Errorf("commit batch to %s: %w", st.Path(), err)
			if errors.Is(err, store.ErrUnrecoverable) {
				return Fatal(err)
			}
			return err
		}
		stats.Batches++
		stats.Messages += int64(len(msgs))
		stats.Inserted += int64(res.Inserted)
		stats.DeadLetters += int64(res.DeadLetters)
		stats.Conflicts += int64(res.Conflicts)
		// The store warns once per batch with dead letters or conflicts.
		log.Debug("batch persisted", "messages", len(msgs), "inserted", res.Inserted,
			"dead_letters", res.DeadLetters, "conflicts", res.Conflicts, "took", time.Since(start))
		return nil
	}
	log.Info("persister consuming", "db", st.Path(), "stream", StreamName, "durable", o.Durable,
		"query_subject", QuerySubject(st.Path()))
	err = Consume(ctx, js, ConsumerOptions{
		Durable:       o.Durable,
		BatchSize:     o.BatchSize,
		MaxWait:       o.MaxWait,
		AckWait:       o.AckWait,
		MaxAckPending: o.MaxAckPending,
		Logger:        log,
	}, handler)
	summary("persister stopped")
	if IsFatal(err) {
		return fmt.Errorf("%w (exiting so that a supervisor restarts the persister; the batch was not acknowledged and is redelivered)", err)
	}
	return err
}

// writeInfo writes the info file atomically, so a reader never sees half.
func writeInfo(dbPath string, pi PersisterInfo) error {
	b, err := json.MarshalIndent(pi, "", "  ")
	if err != nil {
		return err
	}
	tmp := InfoFile(dbPath) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write persister info next to the database: %w", err)
	}
	if err := os.Rename(tmp, InfoFile(dbPath)); err != nil {
		return errors.Join(fmt.Errorf("write persister info: %w", err), os.Remove(tmp))
	}
	return nil
}
