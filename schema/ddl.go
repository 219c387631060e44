package schema

// Migration is one step of the DuckDB schema. Steps are applied in Version
// order, each in its own transaction, and recorded in schema_migrations.
type Migration struct {
	Version int
	SQL     string
}

// Table names, for the store and for tests.
const (
	TableExperiments = "experiments"
	TableCompletions = "experiment_completions"
	TableIterations  = "iterations"
	TableEvaluations = "policy_evaluations"
	TableEvents      = "events"
	TableDeadLetters = "dead_letters"
	TableMigrations  = "schema_migrations"
)

// Tables lists every table the migrations create.
var Tables = []string{
	TableExperiments, TableCompletions, TableIterations, TableEvaluations,
	TableEvents, TableDeadLetters, TableMigrations,
}

// MigrationsTableDDL creates the table that records applied migrations; it
// is run before any migration.
const MigrationsTableDDL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL
)`

// Migrations is the DuckDB schema, oldest first. Never edit a released step;
// append a new one.
//
// Every table is append-only with a primary key on the record's natural key,
// so INSERT ... ON CONFLICT DO NOTHING makes a redelivered record a no-op.
// Completion lives in its own table instead of an UPDATE of experiments,
// because DuckDB updates of indexed rows are slow and conflict-prone. Money
// columns are BIGINT cents; per-agent maps and policies are JSON.
var Migrations = []Migration{
	{Version: 1, SQL: `
CREATE TABLE experiments (
	experiment_id   VARCHAR PRIMARY KEY,
	experiment_name VARCHAR NOT NULL,
	experiment_type VARCHAR NOT NULL,
	config          JSON,
	master_seed     BIGINT NOT NULL,
	scenario        VARCHAR NOT NULL,
	model           VARCHAR NOT NULL,
	started_at      TIMESTAMPTZ NOT NULL,
	program_version VARCHAR NOT NULL,
	host            VARCHAR NOT NULL,
	config_hash     VARCHAR NOT NULL
);
CREATE TABLE experiment_completions (
	experiment_id          VARCHAR PRIMARY KEY,
	completed_at           TIMESTAMPTZ NOT NULL,
	status                 VARCHAR NOT NULL,
	converged              BOOLEAN NOT NULL,
	convergence_reason     VARCHAR NOT NULL,
	num_iterations         INTEGER NOT NULL,
	final_cost             BIGINT NOT NULL,
	best_cost              BIGINT NOT NULL,
	final_policies         JSON,
	agent_final_costs      JSON,
	total_duration_seconds DOUBLE NOT NULL
);
CREATE TABLE iterations (
	experiment_id    VARCHAR NOT NULL,
	iteration        INTEGER NOT NULL,
	total_cost       BIGINT NOT NULL,
	agent_costs      JSON,
	policies         JSON,
	accepted_changes JSON,
	timestamp        TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (experiment_id, iteration)
);
CREATE TABLE policy_evaluations (
	experiment_id   VARCHAR NOT NULL,
	iteration       INTEGER NOT NULL,
	agent_id        VARCHAR NOT NULL,
	proposed_policy JSON,
	old_cost        BIGINT NOT NULL,
	new_cost        BIGINT NOT NULL,
	delta           BIGINT NOT NULL,
	accepted        BOOLEAN NOT NULL,
	reason          VARCHAR NOT NULL,
	num_samples     INTEGER NOT NULL,
	sample_details  JSON,
	seed            BIGINT NOT NULL,
	timestamp       TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (experiment_id, iteration, agent_id)
);
CREATE TABLE events (
	experiment_id VARCHAR NOT NULL,
	seq           BIGINT NOT NULL,
	iteration     INTEGER NOT NULL,
	event_type    VARCHAR NOT NULL,
	data          JSON,
	timestamp     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (experiment_id, seq)
);
-- id is a hash of subject and raw bytes, so a redelivered bad message is
-- stored once.
CREATE TABLE dead_letters (
	id          VARCHAR PRIMARY KEY,
	received_at TIMESTAMPTZ NOT NULL,
	subject     VARCHAR NOT NULL,
	reason      VARCHAR NOT NULL,
	raw         BLOB NOT NULL
);
`},
}
