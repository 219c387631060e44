package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// StreamName is the one stream that holds every record.
	StreamName = "SIMCASH"
	// SubjectPrefix starts every record subject: simcash.<experiment>.<kind>.
	SubjectPrefix = "simcash"
	// SubjectAll matches every record subject.
	SubjectAll = SubjectPrefix + ".>"
	// DuplicateWindow is how long the stream remembers message ids; a
	// publish retried within it is stored once.
	DuplicateWindow = 5 * time.Minute
	// HeaderSchemaVersion carries the record schema version so taps can
	// tell versions apart without decoding.
	HeaderSchemaVersion = "Simcash-Schema-Version"
)

// StreamConfig is the SIMCASH stream's configuration for the given number
// of replicas (1 for one server, 3 in a cluster).
func StreamConfig(replicas int) jetstream.StreamConfig {
	if replicas <= 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "simcash experiment records",
		Subjects:    []string{SubjectAll},
		Storage:     jetstream.FileStorage,
		// Limits retention (not work-queue) so that several consumers can
		// each read everything: persisters, results tail, nats sub.
		Retention:  jetstream.LimitsPolicy,
		Duplicates: DuplicateWindow,
		Replicas:   replicas,
		Discard:    jetstream.DiscardOld,
	}
}

// EnsureStream creates the SIMCASH stream if it does not exist. An
// existing stream keeps its replica count (so a runner started without
// SIMCASH_STREAM_REPLICAS cannot shrink a cluster's stream) and gets the
// other settings of StreamConfig if they drifted. Every process may call it
// at start.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	cfg := StreamConfig(replicas)
	s, err := js.Stream(ctx, StreamName)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return EnsureStream(ctx, js, replicas) // another process was quicker
		}
	case err == nil:
		cur := s.CachedInfo().Config
		cfg.Replicas = cur.Replicas
		if !slices.Equal(cur.Subjects, cfg.Subjects) || cur.Duplicates != cfg.Duplicates ||
			cur.Retention != cfg.Retention || cur.Storage != cfg.Storage {
			s, err = js.UpdateStream(ctx, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s on %s (replicas %d; a cluster needs at least that many JetStream servers): %w",
			StreamName, SubjectAll, cfg.Replicas, err)
	}
	return s, nil
}

// NewJetStream returns a JetStream context for nc with the settings the bus
// relies on: asynchronous publishes time out (so that a publish lost in a
// server restart is retried, not awaited forever).
func NewJetStream(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncMaxPending(8192),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}
