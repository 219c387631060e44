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
	TableHeartbeats  = "heartbeats"
	TableConflicts   = "conflicts"
)

// Tables lists every table the migrations create.
var Tables = []string{
	TableExperiments, TableCompletions, TableIterations, TableEvaluations,
	TableEvents, TableDeadLetters, TableMigrations, TableHeartbeats, TableConflicts,
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
	{Version: 2, SQL: migration2},
	{Version: 3, SQL: `
CREATE TABLE heartbeats (
	experiment_id VARCHAR NOT NULL,
	beat          BIGINT NOT NULL,
	iteration     INTEGER NOT NULL,
	timestamp     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (experiment_id, beat)
);
`},
	{Version: 4, SQL: `ALTER TABLE experiments ADD COLUMN sweep_id VARCHAR;`},
	{Version: 5, SQL: migration5},
}

// migration5 keeps each record's hash, so that a second, different version
// under a stored key is told from a redelivery and kept in conflicts
// instead of being dropped as a duplicate; and it bounds dead letters to a
// prefix of the message plus its size and hash.
const migration5 = `
ALTER TABLE experiments ADD COLUMN record_sha256 VARCHAR;
ALTER TABLE experiment_completions ADD COLUMN record_sha256 VARCHAR;
ALTER TABLE iterations ADD COLUMN record_sha256 VARCHAR;
ALTER TABLE policy_evaluations ADD COLUMN record_sha256 VARCHAR;
ALTER TABLE events ADD COLUMN record_sha256 VARCHAR;
ALTER TABLE heartbeats ADD COLUMN record_sha256 VARCHAR;
ALTER TABLE dead_letters ADD COLUMN raw_bytes BIGINT;
ALTER TABLE dead_letters ADD COLUMN raw_sha256 VARCHAR;
UPDATE dead_letters SET raw_bytes = octet_length(raw), raw_sha256 = sha256(raw);
-- id is a hash of the record id and the new version's hash: a redelivered
-- conflicting message is kept once.
CREATE TABLE conflicts (
	id            VARCHAR PRIMARY KEY,
	received_at   TIMESTAMPTZ NOT NULL,
	subject       VARCHAR NOT NULL,
	record_id     VARCHAR NOT NULL,
	stored_sha256 VARCHAR NOT NULL,
	new_sha256    VARCHAR NOT NULL,
	raw           BLOB NOT NULL,
	raw_bytes     BIGINT NOT NULL
);
`

// migration2 stores what analysis needs and names things as the reference
// does, so its queries run unchanged: run_id beside experiment_id (a real
// column: DuckDB cannot add a generated one), evaluation statistics and
// reason codes, the program's commit, and views over the tables.
const migration2 = `
ALTER TABLE experiments ADD COLUMN program_commit VARCHAR;
ALTER TABLE experiments ADD COLUMN run_id VARCHAR;
UPDATE experiments SET run_id = experiment_id;
ALTER TABLE policy_evaluations ADD COLUMN run_id VARCHAR;
ALTER TABLE policy_evaluations ADD COLUMN evaluation_mode VARCHAR;
ALTER TABLE policy_evaluations ADD COLUMN reason_code VARCHAR;
ALTER TABLE policy_evaluations ADD COLUMN mean_delta BIGINT;
ALTER TABLE policy_evaluations ADD COLUMN delta_std_dev BIGINT;
ALTER TABLE policy_evaluations ADD COLUMN delta_ci_lower BIGINT;
ALTER TABLE policy_evaluations ADD COLUMN delta_ci_upper BIGINT;
ALTER TABLE policy_evaluations ADD COLUMN cost_std_dev BIGINT;
ALTER TABLE policy_evaluations ADD COLUMN confidence_interval_95 JSON;
ALTER TABLE policy_evaluations ADD COLUMN agent_stats JSON;
UPDATE policy_evaluations SET run_id = experiment_id;

-- The reference's table names and columns.
CREATE VIEW experiment_iterations AS
SELECT experiment_id AS run_id, iteration, agent_costs AS costs_per_agent, accepted_changes, policies,
	timestamp, total_cost
FROM iterations;
CREATE VIEW experiment_events AS
SELECT seq AS id, experiment_id AS run_id, iteration, event_type, data AS event_data, timestamp
FROM events;
-- Simulation tick events are not stored (runs keep costs, not tick logs);
-- the view lets the reference's trace queries run and find nothing.
CREATE VIEW simulation_events AS
SELECT NULL::VARCHAR AS event_id, NULL::VARCHAR AS simulation_id, NULL::INTEGER AS tick, NULL::INTEGER AS day,
	NULL::TIMESTAMP AS event_timestamp, NULL::VARCHAR AS event_type, NULL::VARCHAR AS details,
	NULL::VARCHAR AS agent_id, NULL::VARCHAR AS tx_id
WHERE false;

-- For analysts: one row per run; its final cost per agent (long format);
-- one row per iteration and agent.
CREATE VIEW runs AS
SELECT e.experiment_id AS run_id, e.experiment_name, e.master_seed AS seed,
	coalesce(c.status, 'running') AS status, e.model, e.config_hash, e.started_at, c.completed_at,
	c.num_iterations, c.converged, c.convergence_reason, c.final_cost, c.best_cost,
	c.total_duration_seconds, e.program_version, e.program_commit, e.host
FROM experiments e LEFT JOIN experiment_completions c USING (experiment_id);
CREATE VIEW run_final_costs AS
SELECT r.run_id, r.experiment_name, r.seed, r.status, j.key AS agent_id, j.value::BIGINT AS final_cost
FROM runs r JOIN experiment_completions c ON c.experiment_id = r.run_id, json_each(c.agent_final_costs) j;
CREATE VIEW iteration_agents AS
SELECT i.experiment_id AS run_id, i.iteration, j.key AS agent_id, j.value::BIGINT AS cost,
	json_extract(i.policies, '$."' || j.key || '".parameters') AS parameters,
	coalesce(json_extract(i.accepted_changes, '$."' || j.key || '"')::BOOLEAN, false) AS accepted
FROM iterations i, json_each(i.agent_costs) j;
`
