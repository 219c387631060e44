// Package optimizer defines the contract between the experiment loop and
// policy optimizers (LLM-backed or built-in): the loop builds a Request for
// one agent and receives a Proposal holding a candidate policy document.
package optimizer

import (
	"context"
	"encoding/json"
)

// Request is everything an optimizer may use to propose a new policy for one
// agent in one iteration.
type Request struct {
	Agent     string `json:"agent"`
	Iteration int    `json:"iteration"` // 1-based

	// CurrentPolicy is the agent's policy document currently in force.
	CurrentPolicy json.RawMessage `json:"current_policy"`
	// Constraints lists what a proposal may use.
	Constraints Constraints `json:"constraints"`
	// History holds this agent's past proposals, oldest first.
	History []HistoryEntry `json:"history"`
	// Costs is this agent's latest cost breakdown.
	Costs AgentCosts `json:"costs"`
	// CostRates are the scenario's cost rates by name.
	CostRates map[string]float64 `json:"cost_rates"`
	// EventSummary summarises this agent's own simulation events as text.
	EventSummary string `json:"event_summary"`
	// Customization is the prompt_customization text for this agent.
	Customization string `json:"customization"`
	// PreviousErrors are the validation errors of the previous attempt in
	// this agent's retry loop (empty on the first attempt).
	PreviousErrors []string `json:"previous_errors"`
	// Attempt is 1-based within this agent's retry loop.
	Attempt int `json:"attempt"`
}

// Constraints describe the allowed parameters, fields and actions.
type Constraints struct {
	Parameters []AllowedParameter `json:"parameters"`
	Fields     []string           `json:"fields"`
	// Actions maps a tree name (e.g. "payment_tree") to its allowed actions.
	Actions map[string][]string `json:"actions"`
}

// AllowedParameter is one tunable policy parameter.
type AllowedParameter struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"` // int | float | enum
	Min           *float64 `json:"min,omitempty"`
	Max           *float64 `json:"max,omitempty"`
	AllowedValues []any    `json:"allowed_values,omitempty"`
	Description   string   `json:"description,omitempty"`
}

// HistoryEntry is one past proposal of the requesting agent.
type HistoryEntry struct {
	Iteration int                `json:"iteration"`
	Policy    json.RawMessage    `json:"policy"`
	Params    map[string]float64 `json:"params"`
	OldCost   int64              `json:"old_cost"` // cents
	NewCost   int64              `json:"new_cost"` // cents
	Accepted  bool               `json:"accepted"`
	Reason    string             `json:"reason"`
}

// AgentCosts is one agent's cost breakdown in cents.
type AgentCosts struct {
	Liquidity       int64 `json:"liquidity"`
	Delay           int64 `json:"delay"`
	Overdraft       int64 `json:"overdraft"`
	Collateral      int64 `json:"collateral"`
	DeadlinePenalty int64 `json:"deadline_penalty"`
	EODPenalty      int64 `json:"eod_penalty"`
	SplitFriction   int64 `json:"split_friction"`
	Total           int64 `json:"total"`
}

// Proposal is an optimizer's answer. Policy is the candidate document; when
// it could not be obtained or parsed, ParseError says why.
type Proposal struct {
	Policy     json.RawMessage `json:"policy"`
	ParseError string          `json:"parse_error,omitempty"`
	// Interaction records the LLM exchange; nil for non-LLM optimizers.
	Interaction *Interaction `json:"interaction,omitempty"`
}

// Interaction records one LLM call for audit and replay.
type Interaction struct {
	Model            string          `json:"model"`
	SystemPrompt     string          `json:"system_prompt"`
	UserPrompt       string          `json:"user_prompt"`
	RawResponse      string          `json:"raw_response"`
	ParsedPolicy     json.RawMessage `json:"parsed_policy,omitempty"`
	ParseError       string          `json:"parse_error,omitempty"`
	PromptTokens     int             `json:"prompt_tokens"`
	CompletionTokens int             `json:"completion_tokens"`
	LatencySeconds   float64         `json:"latency_seconds"`
	TransportRetries int             `json:"transport_retries"`
}

// Optimizer proposes a new policy for one agent. An error means the
// optimizer could not be consulted at all (e.g. transport failure after
// retries); a malformed answer is reported via Proposal.ParseError instead.
type Optimizer interface {
	Propose(ctx context.Context, req Request) (Proposal, error)
}
