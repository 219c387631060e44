// Package llmopt is the language-model optimizer: it explains the payment
// game and the allowed policy format to a model, shows it one agent's own
// costs and history, and extracts the policy JSON from the answer.
//
// The prompts hold only the requesting agent's data (the Request carries
// nothing else), so no bank learns another bank's costs or events.
//
// A model answer without usable JSON is not an error: Propose returns a
// Proposal whose ParseError says what is wrong, and the experiment loop
// retries with that message. Propose returns an error only when the model
// could not be consulted at all (llm.ErrUnavailable after transport retries).
package llmopt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"simcash/llm"
	"simcash/optimizer"
)

// Config sets the model call and the prompt.
type Config struct {
	// Model is recorded in every Interaction, e.g. "openai:gpt-5.2". A known
	// provider prefix is stripped before the name is sent; empty leaves the
	// choice to the client's own default model.
	Model           string
	Temperature     float64
	MaxTokens       int
	ReasoningEffort string
	ThinkingBudget  int
	// SystemPrompt, when set, replaces the built-in explanation of the
	// domain. The scenario's cost rates, the policy format restricted to
	// the constraints, the answer format and the customization text are
	// still appended, because they come from the experiment, not the prose.
	SystemPrompt string
	// Logger receives one debug line per proposal; nil means slog.Default().
	Logger *slog.Logger
}

// Optimizer asks a language model for policies.
type Optimizer struct {
	client llm.Client
	cfg    Config
	model  string // as sent to the provider
	log    *slog.Logger
}

var _ optimizer.Optimizer = (*Optimizer)(nil)

// New returns an optimizer that asks client.
func New(client llm.Client, cfg Config) optimizer.Optimizer {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Optimizer{client: client, cfg: cfg, model: providerModel(cfg.Model), log: logger}
}

// providerModel drops an "openai:"-style prefix but keeps names such as
// Ollama's "llama3:8b" whole.
func providerModel(m string) string {
	p, name, err := llm.ParseModel(m)
	if err != nil {
		return m
	}
	switch p {
	case llm.ProviderOpenAI, llm.ProviderAnthropic, llm.ProviderGoogle:
		return name
	}
	return m
}

// Prompts returns the system and user prompts Propose sends for req, given
// Config.SystemPrompt (empty: the built-in one); for previews and audits.
func Prompts(systemOverride string, req optimizer.Request) (system, user string) {
	return systemPrompt(systemOverride, req), userPrompt(req)
}

// Propose asks the model for a new policy for req.Agent.
func (o *Optimizer) Propose(ctx context.Context, req optimizer.Request) (optimizer.Proposal, error) {
	system, user := Prompts(o.cfg.SystemPrompt, req)
	in := &optimizer.Interaction{Model: o.cfg.Model, SystemPrompt: system, UserPrompt: user}
	resp, err := o.client.Complete(ctx, llm.Request{
		System:          system,
		User:            user,
		Model:           o.model,
		Temperature:     o.cfg.Temperature,
		MaxTokens:       o.cfg.MaxTokens,
		ReasoningEffort: o.cfg.ReasoningEffort,
		ThinkingBudget:  o.cfg.ThinkingBudget,
	})
	if err != nil {
		// The prompts still go back so the loop can record what was asked.
		in.ParseError = err.Error()
		return optimizer.Proposal{ParseError: in.ParseError, Interaction: in},
			fmt.Errorf("llmopt: agent %s iteration %d: %w", req.Agent, req.Iteration, err)
	}
	in.RawResponse = resp.Text
	in.PromptTokens = resp.PromptTokens
	in.CompletionTokens = resp.CompletionTokens
	in.LatencySeconds = resp.Latency.Seconds()
	in.TransportRetries = resp.Retries

	prop := optimizer.Proposal{Interaction: in}
	if strings.TrimSpace(resp.Text) == "" {
		prop.ParseError = "the model returned an empty answer"
	} else if pol, err := extractPolicy(resp.Text); err != nil {
		prop.ParseError = err.Error()
	} else {
		prop.Policy = pol
		in.ParsedPolicy = pol
	}
	if prop.ParseError != "" && resp.Truncated {
		prop.ParseError += " (the answer stopped at the token limit; raise llm.max_tokens)"
	}
	in.ParseError = prop.ParseError
	o.log.DebugContext(ctx, "llm proposal", "agent", req.Agent, "iteration", req.Iteration,
		"attempt", req.Attempt, "model", o.cfg.Model, "prompt_tokens", resp.PromptTokens,
		"completion_tokens", resp.CompletionTokens, "latency", resp.Latency, "parse_error", prop.ParseError)
	return prop, nil
}
