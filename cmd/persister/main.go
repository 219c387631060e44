// Command persister consumes simcash records from NATS JetStream into one
// DuckDB file. Without a NATS URL it hosts an embedded NATS server that
// runners publish to; with one it joins that server or cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := NewPersisterCommand().Command().ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "persister:", err)
	var ue usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }
