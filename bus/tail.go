package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"simcash/schema"
)

// TailOpt configures Tail.
type TailOpt func(*jetstream.OrderedConsumerConfig)

// TailSince starts the tail at records stored since t instead of at new
// records only.
func TailSince(t time.Time) TailOpt {
	return func(c *jetstream.OrderedConsumerConfig) {
		c.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		c.OptStartTime = &t
	}
}

// TailAll starts the tail at the beginning of the stream.
func TailAll() TailOpt {
	return func(c *jetstream.OrderedConsumerConfig) { c.DeliverPolicy = jetstream.DeliverAllPolicy }
}

// TailSubject is the filter subject for one experiment ("" = all) and one
// record kind or event type ("" = everything): "iteration" selects
// iteration records, "event" all events, "llm_interaction" those events.
func TailSubject(experimentID, typ string) string {
	exp := "*"
	if experimentID != "" {
		exp = experimentID
	}
	switch schema.Kind(typ) {
	case "":
		return SubjectPrefix + "." + exp + ".>"
	case schema.KindStarted, schema.KindIteration, schema.KindEvaluation, schema.KindCompleted, schema.KindHeartbeat:
		return SubjectPrefix + "." + exp + "." + typ
	case schema.KindEvent:
		return SubjectPrefix + "." + exp + ".event.>"
	}
	return SubjectPrefix + "." + exp + ".event." + typ
}

// Tail calls fn for each record on subjects matching filter, live, until
// ctx ends (then it returns nil) or fn returns an error. It uses an ordered
// ephemeral consumer: nothing is acked and no state is left on the server,
// so a tail never disturbs the persister.
func Tail(ctx context.Context, js jetstream.JetStream, filter string, fn func(jetstream.Msg) error, opts ...TailOpt) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	}
	for _, o := range opts {
		o(&cfg)
	}
	cons, err := js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return fmt.Errorf("tail %s: %w (is the %s stream on this server?)", filter, err, StreamName)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail %s: %w", filter, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("tail %s: connection closed: %w", filter, err)
			}
			// Ordered consumers recreate themselves after hiccups.
			if sleep(ctx, 100*time.Millisecond) != nil {
				return nil
			}
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}

// ReadRun returns every record of experiment id that the stream holds, in
// stream order, decoded (copies of one record, published again, are all
// returned). It lets a worker rebuild a run it must resume without access
// to the database. Messages that do not decode are skipped.
func ReadRun(ctx context.Context, js jetstream.JetStream, id string) ([]schema.Record, error) {
	if !schema.ValidID(id) {
		return nil, fmt.Errorf("read run: %q is not an experiment id", id)
	}
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	filter := TailSubject(id, "")
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	var out []schema.Record
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.Fetch(int(min(pending, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read run %s: %w", id, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if r, err := schema.Decode(m.Data()); err == nil {
				out = append(out, r)
			}
			md, err := m.Metadata()
			if err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("read run %s: %w", id, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read run %s: the stream stopped delivering with %d records to go", id, pending)
		}
	}
	return out, nil
}
