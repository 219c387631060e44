package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"simcash/schema"
)

// Reader answers the results tool's queries. *Store implements it; the
// persister serves it over NATS while it holds the database file.
type Reader interface {
	List(ctx context.Context, opts ListOptions) ([]ExperimentSummary, error)
	Show(ctx context.Context, id string) (*ExperimentDetail, error)
	Iterations(ctx context.Context, id string) ([]IterationRow, error)
	Events(ctx context.Context, id string, f EventFilter) ([]EventRow, error)
	Evaluations(ctx context.Context, id string, f EvalFilter) ([]EvaluationRow, error)
	// Query runs one read-only SELECT; Export writes tables to files. The
	// persister serves both, so outside tools get the data while it runs.
	Query(ctx context.Context, query string, limit int) (*QueryResult, error)
	Export(ctx context.Context, dir, format string, ids []string) ([]ExportedFile, error)
}

var _ Reader = (*Store)(nil)

// ListOptions filters and orders List.
type ListOptions struct {
	// Name is an exact experiment name, or a glob pattern when it contains
	// '*' or '?'. Empty matches all.
	Name string `json:"name,omitempty"`
	// Status is running, lost, completed, failed or interrupted. Empty
	// matches all.
	Status string `json:"status,omitempty"`
	// Sort is one of SortKeys, optionally prefixed with '-' for descending.
	// Empty means "-started_at" (newest first).
	Sort string `json:"sort,omitempty"`
	// Limit caps the number of rows; 0 means no limit.
	Limit int `json:"limit,omitempty"`
	// ConfigHash keeps the runs of one configuration (and seed); a prefix
	// of the hash is enough.
	ConfigHash string `json:"config_hash,omitempty"`
	// Model is an exact llm.model, e.g. builtin:search. Empty matches all.
	Model string `json:"model,omitempty"`
	// Sweep keeps the runs of one sweep (runner sweep). Empty matches all.
	Sweep string `json:"sweep,omitempty"`
}

// SortKeys are the accepted ListOptions.Sort values (without '-').
var SortKeys = []string{"started_at", "completed_at", "name", "status", "final_cost", "best_cost", "num_iterations", "id"}

var sortColumns = map[string]string{
	"started_at":     "started_at",
	"completed_at":   "completed_at",
	"name":           "experiment_name",
	"status":         "status",
	"final_cost":     "final_cost",
	"best_cost":      "best_cost",
	"num_iterations": "num_iterations",
	"id":             "experiment_id",
}

// EventFilter narrows Events.
type EventFilter struct {
	Type      string `json:"type,omitempty"`      // event type; empty matches all
	Iteration int    `json:"iteration,omitempty"` // 0 matches all
}

// EvalFilter narrows Evaluations.
type EvalFilter struct {
	Agent     string `json:"agent,omitempty"`     // agent id; empty matches all
	Iteration int    `json:"iteration,omitempty"` // 0 matches all
}

// ExperimentSummary is one row of List. Costs are int64 cents; they and
// CompletedAt are null while the experiment runs.
type ExperimentSummary struct {
	ExperimentID      string     `json:"experiment_id"`
	ExperimentName    string     `json:"experiment_name"`
	Status            string     `json:"status"` // running|completed|failed|interrupted
	NumIterations     int        `json:"num_iterations"`
	Converged         bool       `json:"converged"`
	ConvergenceReason string     `json:"convergence_reason"`
	FinalCost         *int64     `json:"final_cost"`
	BestCost          *int64     `json:"best_cost"`
	StartedAt         time.Time  `json:"started_at"`
	CompletedAt       *time.Time `json:"completed_at"`
	Model             string     `json:"model"`
	Scenario          string     `json:"scenario"`
	MasterSeed        int64      `json:"master_seed"`
	SweepID           string     `json:"sweep_id,omitempty"`
	// Model usage summed over the run's llm_interaction events.
	LLMCalls         int64 `json:"llm_calls"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// LastSeen is the time of a running experiment's latest event or
	// heartbeat (nil once it has ended): when it last showed signs of life.
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// ExperimentDetail is what Show returns.
type ExperimentDetail struct {
	ExperimentSummary
	ExperimentType  string           `json:"experiment_type"`
	Config          json.RawMessage  `json:"config"`
	FinalPolicies   json.RawMessage  `json:"final_policies"`
	AgentFinalCosts map[string]int64 `json:"agent_final_costs"`
	DurationSeconds *float64         `json:"total_duration_seconds"`
	ProgramVersion  string           `json:"program_version"`
	ProgramCommit   string           `json:"program_commit"`
	Host            string           `json:"host"`
	ConfigHash      string           `json:"config_hash"`
}

// Row types of the per-experiment queries: the records as published.
type (
	IterationRow  = schema.Iteration
	EventRow      = schema.Event
	EvaluationRow = schema.PolicyEvaluation
)

// summarySelect yields one row per experiment; status is derived from the
// completion record, and a running experiment counts its iteration rows.
const summarySelect = `
SELECT * FROM (
	SELECT e.experiment_id, e.experiment_name,
		CASE WHEN c.status IS NOT NULL AND NOT (c.status = 'interrupted' AND ls.last_seen > c.completed_at) THEN c.status
			WHEN greatest(e.started_at, coalesce(ls.last_seen, e.started_at)) < ?::TIMESTAMPTZ THEN 'lost'
			ELSE 'running' END AS status,
		coalesce(c.num_iterations, (SELECT count(*) FROM iterations i WHERE i.experiment_id = e.experiment_id))::BIGINT AS num_iterations,
		coalesce(c.converged, false) AS converged,
		coalesce(c.convergence_reason, '') AS convergence_reason,
		c.final_cost, c.best_cost, e.started_at, c.completed_at,
		e.model, e.scenario, e.master_seed,
		e.experiment_type, e.config::VARCHAR AS config, c.final_policies::VARCHAR AS final_policies,
		c.agent_final_costs::VARCHAR AS agent_final_costs, c.total_duration_seconds,
		e.program_version, e.host, e.config_hash,
		coalesce(e.program_commit, '') AS program_commit, coalesce(e.sweep_id, '') AS sweep_id,
		coalesce(t.llm_calls, 0)::BIGINT, coalesce(t.prompt_tokens, 0)::BIGINT, coalesce(t.completion_tokens, 0)::BIGINT,
		ls.last_seen
	FROM experiments e LEFT JOIN experiment_completions c USING (experiment_id)
	LEFT JOIN (
		SELECT experiment_id, max(timestamp) AS last_seen FROM (
			SELECT experiment_id, timestamp FROM events UNION ALL SELECT experiment_id, timestamp FROM heartbeats
		) WHERE experiment_id IN (SELECT experiment_id FROM experiments
			EXCEPT SELECT experiment_id FROM experiment_completions WHERE status <> 'interrupted')
		GROUP BY experiment_id
	) ls USING (experiment_id)
	LEFT JOIN (
		SELECT experiment_id, count(*) AS llm_calls,
			sum(coalesce(try_cast(data->>'prompt_tokens' AS BIGINT), 0)) AS prompt_tokens,
			sum(coalesce(try_cast(data->>'completion_tokens' AS BIGINT), 0)) AS completion_tokens
		FROM events WHERE event_type = 'llm_interaction' GROUP BY experiment_id
	) t USING (experiment_id)
) s`

func scanSummary(sc interface{ Scan(...any) error }, d *ExperimentDetail) error {
	var (
		lastSeen         sql.NullTime
		final, best      sql.NullInt64
		completed        sql.NullTime
		dur              sql.NullFloat64
		cfg, pol, agents sql.NullString
	)
	err := sc.Scan(&d.ExperimentID, &d.ExperimentName, &d.Status, &d.NumIterations, &d.Converged,
		&d.ConvergenceReason, &final, &best, &d.StartedAt, &completed, &d.Model, &d.Scenario, &d.MasterSeed,
		&d.ExperimentType, &cfg, &pol, &agents, &dur, &d.ProgramVersion, &d.Host, &d.ConfigHash,
		&d.ProgramCommit, &d.SweepID, &d.LLMCalls, &d.PromptTokens, &d.CompletionTokens, &lastSeen)
	if err != nil {
		return err
	}
	if final.Valid {
		d.FinalCost = &final.Int64
	}
	if best.Valid {
		d.BestCost = &best.Int64
	}
	if completed.Valid {
		t := completed.Time.UTC()
		d.CompletedAt = &t
	}
	if lastSeen.Valid {
		t := lastSeen.Time.UTC()
		d.LastSeen = &t
	}
	d.StartedAt = d.StartedAt.UTC()
	if dur.Valid {
		d.DurationSeconds = &dur.Float64
	}
	d.Config = rawJSON(cfg)
	d.FinalPolicies = rawJSON(pol)
	if agents.Valid {
		if err := json.Unmarshal([]byte(agents.String), &d.AgentFinalCosts); err != nil {
			return fmt.Errorf("agent_final_costs: %w", err)
		}
	}
	return nil
}

func rawJSON(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// List returns experiment summaries matching opts.
func (s *Store) List(ctx context.Context, opts ListOptions) ([]ExperimentSummary, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	q := summarySelect
	var where []string
	args := []any{s.lostCutoff()}
	if opts.Name != "" {
		if strings.ContainsAny(opts.Name, "*?") {
			where = append(where, "experiment_name GLOB ?")
		} else {
			where = append(where, "experiment_name = ?")
		}
		args = append(args, opts.Name)
	}
	if opts.Sweep != "" {
		where = append(where, "sweep_id = ?")
		args = append(args, opts.Sweep)
	}
	if opts.Model != "" {
		where = append(where, "model = ?")
		args = append(args, opts.Model)
	}
	if opts.ConfigHash != "" {
		where = append(where, "starts_with(config_hash, ?)")
		args = append(args, opts.ConfigHash)
	}
	if opts.Status != "" {
		switch opts.Status {
		case schema.StatusRunning, schema.StatusLost, schema.StatusCompleted, schema.StatusFailed, schema.StatusInterrupted:
		default:
			return nil, fmt.Errorf("unknown status %q: use running, lost, completed, failed or interrupted", opts.Status)
		}
		where = append(where, "status = ?")
		args = append(args, opts.Status)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	key, desc := opts.Sort, false
	if key == "" {
		key, desc = "started_at", true
	}
	if strings.HasPrefix(key, "-") {
		key, desc = key[1:], true
	}
	col, ok := sortColumns[key]
	if !ok {
		return nil, fmt.Errorf("unknown sort key %q: use one of %s (prefix '-' for descending)", opts.Sort, strings.Join(SortKeys, ", "))
	}
	dir := "ASC"
	if desc {
		dir = "DESC"
	}
	q += fmt.Sprintf(" ORDER BY %s %s NULLS LAST, experiment_id", col, dir)
	if opts.Limit < 0 {
		return nil, fmt.Errorf("limit %d: want 0 (no limit) or more", opts.Limit)
	}
	if opts.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", opts.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	defer rows.Close()
	out := []ExperimentSummary{}
	for rows.Next() {
		var d ExperimentDetail
		if err := scanSummary(rows, &d); err != nil {
			return nil, fmt.Errorf("list experiments: %w", err)
		}
		out = append(out, d.ExperimentSummary)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	return out, nil
}

// Show returns one experiment with its config and final policies, or an
// error wrapping ErrNotFound.
func (s *Store) Show(ctx context.Context, id string) (*ExperimentDetail, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	var d ExperimentDetail
	err := scanSummary(s.db.QueryRowContext(ctx, summarySelect+" WHERE experiment_id = ?", s.lostCutoff(), id), &d)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("%w: %q (see `results list`)", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("show experiment %s: %w", id, err)
	}
	return &d, nil
}

// exists turns an empty per-experiment answer into ErrNotFound when the
// experiment itself is unknown.
func (s *Store) exists(ctx context.Context, id string) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM experiments WHERE experiment_id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("look up experiment %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q (see `results list`)", ErrNotFound, id)
	}
	return nil
}

// Iterations returns an experiment's iterations in order.
func (s *Store) Iterations(ctx context.Context, id string) ([]IterationRow, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if err := s.exists(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT experiment_id, iteration, total_cost, agent_costs::VARCHAR, policies::VARCHAR,
			accepted_changes::VARCHAR, timestamp
		FROM iterations WHERE experiment_id = ? ORDER BY iteration`, id)
	if err != nil {
		return nil, fmt.Errorf("iterations of %s: %w", id, err)
	}
	defer rows.Close()
	out := []IterationRow{}
	for rows.Next() {
		var r IterationRow
		var costs, pol, acc sql.NullString
		if err := rows.Scan(&r.ExpID, &r.Iteration, &r.TotalCost, &costs, &pol, &acc, &r.Timestamp); err != nil {
			return nil, fmt.Errorf("iterations of %s: %w", id, err)
		}
		r.Timestamp = r.Timestamp.UTC()
		r.Policies = rawJSON(pol)
		if err := unmarshalNull(costs, &r.AgentCosts); err != nil {
			return nil, fmt.Errorf("iterations of %s: agent_costs: %w", id, err)
		}
		if err := unmarshalNull(acc, &r.AcceptedChanges); err != nil {
			return nil, fmt.Errorf("iterations of %s: accepted_changes: %w", id, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("iterations of %s: %w", id, err)
	}
	return out, nil
}

// Events returns an experiment's events in sequence order.
func (s *Store) Events(ctx context.Context, id string, f EventFilter) ([]EventRow, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if err := s.exists(ctx, id); err != nil {
		return nil, err
	}
	q := `SELECT experiment_id, seq, iteration, event_type, data::VARCHAR, timestamp
		FROM events WHERE experiment_id = ?`
	args := []any{id}
	if f.Type != "" {
		q += " AND event_type = ?"
		args = append(args, f.Type)
	}
	if f.Iteration != 0 {
		q += " AND iteration = ?"
		args = append(args, f.Iteration)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY seq", args...)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	defer rows.Close()
	out := []EventRow{}
	cache := blobCache{}
	for rows.Next() {
		var r EventRow
		var data sql.NullString
		if err := rows.Scan(&r.ExpID, &r.Seq, &r.Iteration, &r.EventType, &data, &r.Timestamp); err != nil {
			return nil, fmt.Errorf("events of %s: %w", id, err)
		}
		r.Timestamp = r.Timestamp.UTC()
		r.Data = s.resolve(rawJSON(data), cache)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	return out, nil
}

// Evaluations returns an experiment's policy evaluations by iteration, then
// agent.
func (s *Store) Evaluations(ctx context.Context, id string, f EvalFilter) ([]EvaluationRow, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if err := s.exists(ctx, id); err != nil {
		return nil, err
	}
	q := `SELECT experiment_id, iteration, agent_id, proposed_policy::VARCHAR, old_cost, new_cost, delta,
			accepted, reason, num_samples, sample_details::VARCHAR, seed, timestamp,
			coalesce(evaluation_mode, ''), coalesce(reason_code, ''), mean_delta, delta_std_dev,
			delta_ci_lower, delta_ci_upper, cost_std_dev, (confidence_interval_95->>'$[0]')::BIGINT, (confidence_interval_95->>'$[1]')::BIGINT
		FROM policy_evaluations WHERE experiment_id = ?`
	args := []any{id}
	if f.Agent != "" {
		q += " AND agent_id = ?"
		args = append(args, f.Agent)
	}
	if f.Iteration != 0 {
		q += " AND iteration = ?"
		args = append(args, f.Iteration)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY iteration, agent_id", args...)
	if err != nil {
		return nil, fmt.Errorf("evaluations of %s: %w", id, err)
	}
	defer rows.Close()
	out := []EvaluationRow{}
	for rows.Next() {
		var r EvaluationRow
		var pol, det sql.NullString
		var stats [7]sql.NullInt64
		if err := rows.Scan(&r.ExpID, &r.Iteration, &r.Agent, &pol, &r.OldCost, &r.NewCost, &r.Delta,
			&r.Accepted, &r.Reason, &r.NumSamples, &det, &r.Seed, &r.Timestamp, &r.EvaluationMode, &r.ReasonCode,
			&stats[0], &stats[1], &stats[2], &stats[3], &stats[4], &stats[5], &stats[6]); err != nil {
			return nil, fmt.Errorf("evaluations of %s: %w", id, err)
		}
		for k, p := range []**int64{&r.MeanDelta, &r.DeltaStdDev, &r.DeltaCILower, &r.DeltaCIUpper, &r.CostStdDev, &r.CostCILower, &r.CostCIUpper} {
			if stats[k].Valid {
				v := stats[k].Int64
				*p = &v
			}
		}
		r.Timestamp = r.Timestamp.UTC()
		r.ProposedPolicy = rawJSON(pol)
		r.SampleDetails = rawJSON(det)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluations of %s: %w", id, err)
	}
	return out, nil
}

func unmarshalNull(s sql.NullString, v any) error {
	if !s.Valid {
		return nil
	}
	return json.Unmarshal([]byte(s.String), v)
}

// DefaultLostAfter is how long an experiment without a completion may show
// no sign of life (a record or a heartbeat; runners beat every 10 s) before
// the store reports it as lost.
const DefaultLostAfter = time.Minute

// lostCutoff is the time before which a silent running experiment is lost.
func (s *Store) lostCutoff() time.Time { return s.now().Add(-s.lostAfter).UTC() }
