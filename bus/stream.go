package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelseyhightower/envconfig"
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
func StreamConfig(replicas int, limits StreamLimits) jetstream.StreamConfig {
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
		// At its byte limit the stream refuses new records (publishers
		// fail loudly after their store timeout) instead of dropping old
		// ones a persister may not have stored yet.
		Discard:  jetstream.DiscardNew,
		MaxBytes: limits.MaxBytes,
		MaxAge:   limits.MaxAge,
	}
}

// StreamLimits bound the SIMCASH stream. Records are deleted from it when
// older than MaxAge even if no persister stored them, so MaxAge must
// exceed the longest time a persister may be down.
type StreamLimits struct {
	MaxAge   time.Duration `envconfig:"STREAM_MAX_AGE" default:"720h"`          // SIMCASH_STREAM_MAX_AGE
	MaxBytes int64         `envconfig:"STREAM_MAX_BYTES" default:"10737418240"` // SIMCASH_STREAM_MAX_BYTES (10 GiB)
}

// LoadStreamLimits reads SIMCASH_STREAM_MAX_AGE and SIMCASH_STREAM_MAX_BYTES.
func LoadStreamLimits() (StreamLimits, error) {
	var l StreamLimits
	if err := envconfig.Process("SIMCASH", &l); err != nil {
		return l, fmt.Errorf("stream limits: %w", err)
	}
	if l.MaxAge <= 0 || l.MaxBytes <= 0 {
		return l, fmt.Errorf("stream limits: SIMCASH_STREAM_MAX_AGE (%s) and SIMCASH_STREAM_MAX_BYTES (%d) must be positive", l.MaxAge, l.MaxBytes)
	}
	return l, nil
}

// EnsureStream creates the SIMCASH stream if it does not exist. An
// existing stream keeps its replica count and its limits (so a runner
// started without SIMCASH_STREAM_REPLICAS or SIMCASH_STREAM_MAX_* cannot
// shrink a cluster's stream or undo an operator's limits; a stream from
// before limits existed gets them) and gets the other settings of
// StreamConfig if they drifted. Every process may call it at start.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	limits, err := LoadStreamLimits()
	if err != nil {
		return nil, err
	}
	cfg := StreamConfig(replicas, limits)
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
		if cur.MaxBytes > 0 && cur.MaxAge > 0 {
			cfg.MaxBytes, cfg.MaxAge = cur.MaxBytes, cur.MaxAge
		}
		if !slices.Equal(cur.Subjects, cfg.Subjects) || cur.Duplicates != cfg.Duplicates ||
			cur.Retention != cfg.Retention || cur.Storage != cfg.Storage ||
			cur.Discard != cfg.Discard || cur.MaxBytes != cfg.MaxBytes || cur.MaxAge != cfg.MaxAge {
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
