// Package schema defines the records that runners publish and the persister
// stores: their Go types, their versioned wire encoding, the NATS subjects and
// message ids derived from their natural keys, and the DuckDB tables that hold
// them.
package schema

import (
	"encoding/json"
	"strconv"
	"time"
)

// Kind names a record type. It appears in the wire envelope and in subjects.
type Kind string

// The record kinds.
const (
	KindStarted    Kind = "started"
	KindIteration  Kind = "iteration"
	KindEvaluation Kind = "evaluation"
	KindEvent      Kind = "event"
	KindCompleted  Kind = "completed"
	KindHeartbeat  Kind = "heartbeat"
)

// Completion statuses of an experiment. StatusRunning and StatusLost are
// never published: the store reports an experiment without a completion
// record as running, or as lost once it has shown no sign of life (record
// or heartbeat) for longer than the store's lost-after time.
const (
	StatusRunning     = "running"
	StatusLost        = "lost"
	StatusCompleted   = "completed"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
)

// Record is implemented by every record type. Key is the natural key within
// the experiment and kind ("" for started and completed records, which occur
// once per experiment).
type Record interface {
	Kind() Kind
	ExperimentID() string
	Key() string
}

// ExperimentStarted is published once when an experiment begins.
type ExperimentStarted struct {
	ExpID          string          `json:"experiment_id"`
	Name           string          `json:"experiment_name"`
	Type           string          `json:"experiment_type"` // always "generic" for now
	Config         json.RawMessage `json:"config"`          // full resolved config, master_seed included
	MasterSeed     int64           `json:"master_seed"`
	Scenario       string          `json:"scenario"`
	Model          string          `json:"model"`
	StartedAt      time.Time       `json:"started_at"`
	ProgramVersion string          `json:"program_version"`
	ProgramCommit  string          `json:"program_commit,omitempty"` // VCS revision from the build info, "+dirty" when modified
	SweepID        string          `json:"sweep_id,omitempty"`       // the sweep that ran it (runner sweep / worker)
	Host           string          `json:"host"`
	ConfigHash     string          `json:"config_hash"`
}

// Iteration is published after each iteration's policies were evaluated.
// Costs are int64 cents.
type Iteration struct {
	ExpID           string           `json:"experiment_id"`
	Iteration       int              `json:"iteration"` // 1-based
	TotalCost       int64            `json:"total_cost"`
	AgentCosts      map[string]int64 `json:"agent_costs"`
	Policies        json.RawMessage  `json:"policies"` // agent -> policy in force
	AcceptedChanges map[string]bool  `json:"accepted_changes"`
	Timestamp       time.Time        `json:"timestamp"`
}

// PolicyEvaluation records one proposal for one agent in one iteration and
// whether it was accepted. Costs are int64 cents; Delta = OldCost - NewCost.
type PolicyEvaluation struct {
	ExpID          string          `json:"experiment_id"`
	Iteration      int             `json:"iteration"`
	Agent          string          `json:"agent_id"`
	ProposedPolicy json.RawMessage `json:"proposed_policy"`
	OldCost        int64           `json:"old_cost"`
	NewCost        int64           `json:"new_cost"`
	Delta          int64           `json:"delta"`
	Accepted       bool            `json:"accepted"`
	Reason         string          `json:"reason"`
	NumSamples     int             `json:"num_samples"`
	SampleDetails  json.RawMessage `json:"sample_details"`
	Seed           int64           `json:"seed"`
	Timestamp      time.Time       `json:"timestamp"`

	// EvaluationMode is the experiment's mode: bootstrap, deterministic or
	// deterministic-temporal.
	EvaluationMode string `json:"evaluation_mode,omitempty"`
	// ReasonCode is Reason as one of the Reason* codes.
	ReasonCode string `json:"reason_code,omitempty"`
	// Statistics of the paired samples, in cents rounded to the cent; nil
	// when the proposal was not evaluated (and the intervals when fewer
	// than two samples were).
	MeanDelta    *int64 `json:"mean_delta,omitempty"`
	DeltaStdDev  *int64 `json:"delta_std_dev,omitempty"`
	DeltaCILower *int64 `json:"delta_ci_lower,omitempty"` // 95% Student t interval of the mean delta
	DeltaCIUpper *int64 `json:"delta_ci_upper,omitempty"`
	CostStdDev   *int64 `json:"cost_std_dev,omitempty"` // of the proposal's sample costs
	CostCILower  *int64 `json:"cost_ci_lower,omitempty"`
	CostCIUpper  *int64 `json:"cost_ci_upper,omitempty"` // 95% interval of the proposal's mean cost
}

// Reason codes of a policy evaluation (PolicyEvaluation.ReasonCode).
const (
	ReasonImproved        = "improved"
	ReasonNoImprovement   = "no_improvement"
	ReasonNotSignificant  = "not_significant"
	ReasonTooVariable     = "too_variable"
	ReasonUnchanged       = "unchanged"
	ReasonInvalidProposal = "invalid_proposal"
	ReasonOptimizerError  = "optimizer_error"
	// ReasonTemporal: deterministic-temporal mode accepts every valid
	// proposal without comparing costs.
	ReasonTemporal = "temporal_accept"
)

// ReasonCodes lists every reason code.
var ReasonCodes = []string{ReasonImproved, ReasonNoImprovement, ReasonNotSignificant, ReasonTooVariable,
	ReasonUnchanged, ReasonInvalidProposal, ReasonOptimizerError, ReasonTemporal}

// Event is one entry of an experiment's event log. Seq is a per-experiment
// sequence number and the natural key; EventType must be a valid subject token.
type Event struct {
	ExpID     string          `json:"experiment_id"`
	Seq       int64           `json:"seq"`
	Iteration int             `json:"iteration"`
	EventType string          `json:"event_type"`
	Data      json.RawMessage `json:"data"`
	Timestamp time.Time       `json:"timestamp"`
}

// ExperimentCompleted is published once when an experiment ends, however it
// ends. Costs are int64 cents.
type ExperimentCompleted struct {
	ExpID             string           `json:"experiment_id"`
	CompletedAt       time.Time        `json:"completed_at"`
	Status            string           `json:"status"` // completed|failed|interrupted
	Converged         bool             `json:"converged"`
	ConvergenceReason string           `json:"convergence_reason"`
	NumIterations     int              `json:"num_iterations"`
	FinalCost         int64            `json:"final_cost"`
	BestCost          int64            `json:"best_cost"`
	FinalPolicies     json.RawMessage  `json:"final_policies"`
	AgentFinalCosts   map[string]int64 `json:"agent_final_costs"`
	DurationSeconds   float64          `json:"total_duration_seconds"`
}

// Heartbeat says a runner is alive while it works (a model call can take
// minutes): one every few seconds, numbered from 1 per experiment.
type Heartbeat struct {
	ExpID     string    `json:"experiment_id"`
	Beat      int64     `json:"beat"`
	Iteration int       `json:"iteration"` // the iteration in progress
	Timestamp time.Time `json:"timestamp"`
}

func (*Heartbeat) Kind() Kind                       { return KindHeartbeat }
func (r *Heartbeat) ExperimentID() string           { return r.ExpID }
func (r *Heartbeat) Key() string                    { return strconv.FormatInt(r.Beat, 10) }
func (*ExperimentStarted) Kind() Kind               { return KindStarted }
func (*Iteration) Kind() Kind                       { return KindIteration }
func (*PolicyEvaluation) Kind() Kind                { return KindEvaluation }
func (*Event) Kind() Kind                           { return KindEvent }
func (*ExperimentCompleted) Kind() Kind             { return KindCompleted }
func (r *ExperimentStarted) ExperimentID() string   { return r.ExpID }
func (r *Iteration) ExperimentID() string           { return r.ExpID }
func (r *PolicyEvaluation) ExperimentID() string    { return r.ExpID }
func (r *Event) ExperimentID() string               { return r.ExpID }
func (r *ExperimentCompleted) ExperimentID() string { return r.ExpID }

func (*ExperimentStarted) Key() string   { return "" }
func (r *Iteration) Key() string         { return strconv.Itoa(r.Iteration) }
func (r *PolicyEvaluation) Key() string  { return strconv.Itoa(r.Iteration) + "." + r.Agent }
func (r *Event) Key() string             { return strconv.FormatInt(r.Seq, 10) }
func (*ExperimentCompleted) Key() string { return "" }
