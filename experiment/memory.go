package experiment

import (
	"context"
	"sync"

	"simcash/schema"
)

// Memory is a Sink that keeps records in memory, for tests and dry runs.
type Memory struct {
	mu      sync.Mutex
	Records []schema.Record
}

// Publish appends r.
func (m *Memory) Publish(_ context.Context, r schema.Record) error {
	m.mu.Lock()
	m.Records = append(m.Records, r)
	m.mu.Unlock()
	return nil
}

// Discard is a Sink that drops every record (runs without an output section).
type Discard struct{}

// Publish does nothing.
func (Discard) Publish(context.Context, schema.Record) error { return nil }
