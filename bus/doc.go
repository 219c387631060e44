// Package bus carries simcash records over NATS JetStream.
//
// Runners publish records (see package schema) to the SIMCASH stream on
// subjects simcash.<experiment_id>.<kind>; a persister consumes them with a
// durable pull consumer and commits them to DuckDB (see package store) in
// batches, acking only after the commit. Every message carries a
// deterministic Nats-Msg-Id so that publish retries are deduplicated by the
// stream and redeliveries are no-ops in the database.
//
// For a single machine and for tests the NATS server runs embedded
// (StartEmbedded, StartLocal); otherwise Connect joins a server or cluster
// described by Config, read from SIMCASH_* environment variables.
package bus
