// Package llm talks to language-model providers (OpenAI, Anthropic, Google
// Gemini, and any OpenAI-compatible server such as vLLM, Ollama, llama.cpp or
// a gateway) through one small interface.
//
// The official SDKs do the wire work; their own retries are disabled so that
// this package alone decides what is retried: transport failures (timeouts,
// refused connections, HTTP 408/409/429/5xx) are retried with exponential
// backoff, honouring a short Retry-After, and when they persist Complete
// returns an error wrapping ErrUnavailable. Any other HTTP error (bad key,
// unknown model, malformed request) fails at once, because retrying cannot
// fix it.
package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// ErrUnavailable reports that the provider could not be reached or kept
// failing transiently after all transport retries. The caller may carry on
// without an answer (the experiment loop keeps the old policy).
var ErrUnavailable = errors.New("llm: provider unavailable")

// ErrNoAPIKey reports that a provider's own endpoint was chosen and no key
// was found. Commands that only check a configuration treat it as a note.
var ErrNoAPIKey = errors.New("no API key")

// Request is one single-turn completion request.
type Request struct {
	System string
	User   string
	// Model overrides Config.Model when not empty.
	Model       string
	Temperature float64
	// MaxTokens bounds the answer; 0 means the provider default (Anthropic,
	// which requires a bound, gets DefaultMaxTokens).
	MaxTokens int
	// ReasoningEffort ("low", "medium", "high", ...) is sent to OpenAI-style
	// providers; reasoning models reject a temperature, so none is sent with it.
	ReasoningEffort string
	// ThinkingBudget enables Anthropic extended thinking (and Gemini's
	// thinking budget) with that many tokens.
	ThinkingBudget int
}

// Response is the model's answer with real usage figures from the API.
type Response struct {
	Text             string
	PromptTokens     int
	CompletionTokens int
	// Latency is the duration of the successful attempt.
	Latency time.Duration
	// Retries counts the transport retries before the successful attempt.
	Retries int
	// Truncated reports that the answer stopped at the token limit.
	Truncated bool
}

// Client completes prompts. Implementations are safe for concurrent use.
type Client interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// Providers.
const (
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
	ProviderGoogle    = "google"
)

// DefaultMaxTokens bounds an Anthropic answer when Request.MaxTokens is 0.
const DefaultMaxTokens = 8192

// GoogleOpenAIBaseURL is Gemini's OpenAI-compatible endpoint.
const GoogleOpenAIBaseURL = "https://generativelanguage.googleapis.com/v1beta/openai/"

// placeholderKey is sent to servers that need no key (local vLLM, Ollama...)
// because the SDKs and some servers insist on an Authorization header.
const placeholderKey = "no-key-needed"

// maxRetryAfter is the longest server-requested wait we honour; a longer one
// (hours of quota exhaustion) falls back to our own backoff schedule.
const maxRetryAfter = 60 * time.Second

// Config selects and configures a provider.
type Config struct {
	// Provider is "openai", "anthropic" or "google".
	Provider string
	// Model is the default model name (without the provider prefix).
	Model string
	// BaseURL points at another server speaking the provider's API, e.g. a
	// local vLLM at http://localhost:8000/v1. Empty: the provider's own.
	BaseURL string
	// APIKey overrides the key from the environment (OPENAI_API_KEY,
	// ANTHROPIC_API_KEY, GOOGLE_API_KEY or GEMINI_API_KEY).
	APIKey string
	// Timeout bounds each attempt; 0 means no per-attempt bound.
	Timeout time.Duration
	// MaxTransportRetries is how many times a transport failure is retried.
	MaxTransportRetries int
	// Backoff gives the wait before retry number attempt (1-based). Nil
	// means Jittered(DefaultBackoff).
	Backoff func(attempt int) time.Duration
	// Logger receives retry warnings; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultBackoff waits 1s, 2s, 4s, ... capped at 30s.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Second << min(attempt-1, 5)
	return min(d, 30*time.Second)
}

// Jittered spreads each wait of backoff uniformly over its upper half, so
// that many runners hitting one rate limit do not retry in lockstep.
func Jittered(backoff func(attempt int) time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := backoff(attempt)
		if d <= 1 {
			return d
		}
		return d/2 + rand.N(d-d/2)
	}
}

// ParseModel splits "provider:model" (as in experiment files) into its parts.
func ParseModel(s string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(s, ":")
	if !ok || provider == "" || model == "" {
		return "", "", fmt.Errorf("llm: model %q must be written provider:model, e.g. openai:gpt-5.2", s)
	}
	return provider, model, nil
}

// backend performs one attempt against a provider.
type backend interface {
	complete(ctx context.Context, model string, req Request) (Response, error)
	name() string
}

// New returns a Client for cfg.Provider.
func New(cfg Config) (Client, error) {
	if cfg.MaxTransportRetries < 0 {
		return nil, fmt.Errorf("llm: MaxTransportRetries is %d; it must be 0 or more", cfg.MaxTransportRetries)
	}
	key := cfg.APIKey
	var b backend
	switch cfg.Provider {
	case ProviderOpenAI:
		key = firstNonEmpty(key, os.Getenv("OPENAI_API_KEY"))
		if err := needKey(cfg, key, "OPENAI_API_KEY"); err != nil {
			return nil, err
		}
		b = newOpenAI(cfg.Provider, cfg.BaseURL, orPlaceholder(key))
	case ProviderGoogle:
		key = firstNonEmpty(key, os.Getenv("GOOGLE_API_KEY"), os.Getenv("GEMINI_API_KEY"))
		if err := needKey(cfg, key, "GOOGLE_API_KEY or GEMINI_API_KEY"); err != nil {
			return nil, err
		}
		base := cfg.BaseURL
		if base == "" {
			base = GoogleOpenAIBaseURL
		}
		b = newOpenAI(cfg.Provider, base, orPlaceholder(key))
	case ProviderAnthropic:
		key = firstNonEmpty(key, os.Getenv("ANTHROPIC_API_KEY"))
		if err := needKey(cfg, key, "ANTHROPIC_API_KEY"); err != nil {
			return nil, err
		}
		b = newAnthropic(cfg.BaseURL, orPlaceholder(key), cfg.Timeout)
	default:
		return nil, fmt.Errorf("llm: unknown provider %q; use openai, anthropic or google (set base_url for an OpenAI-compatible server)", cfg.Provider)
	}
	backoff := cfg.Backoff
	if backoff == nil {
		backoff = Jittered(DefaultBackoff)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &client{b: b, cfg: cfg, backoff: backoff, log: logger}, nil
}

// needKey insists on a key for a provider's own endpoint; a custom base URL
// (typically a local server) may do without one.
func needKey(cfg Config, key, envNames string) error {
	if key == "" && cfg.BaseURL == "" {
		return fmt.Errorf("llm: %w for %s: set %s in the environment (or base_url for a local server)", ErrNoAPIKey, cfg.Provider, envNames)
	}
	return nil
}

func orPlaceholder(key string) string {
	if key == "" {
		return placeholderKey
	}
	return key
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

type client struct {
	b       backend
	cfg     Config
	backoff func(int) time.Duration
	log     *slog.Logger
}

// Complete runs the request, retrying transport failures.
func (c *client) Complete(ctx context.Context, req Request) (Response, error) {
	model := firstNonEmpty(req.Model, c.cfg.Model)
	if model == "" {
		return Response{}, fmt.Errorf("llm: %s: no model given; set llm.model to %s:<model>", c.b.name(), c.b.name())
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, model, req)
		if err == nil {
			resp.Retries = attempt
			return resp, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; that is not the provider's fault.
			return Response{}, fmt.Errorf("llm: %s %s: %w", c.b.name(), model, ctx.Err())
		}
		te, transient := classify(err)
		if !transient {
			return Response{}, permanentError(c.b.name(), model, err)
		}
		lastErr = err
		if attempt >= c.cfg.MaxTransportRetries {
			break
		}
		wait := c.backoff(attempt + 1)
		if te.retryAfter > 0 && te.retryAfter <= maxRetryAfter {
			wait = te.retryAfter
		}
		c.log.WarnContext(ctx, "llm transport failure, retrying",
			"provider", c.b.name(), "model", model, "retry", attempt+1,
			"max_retries", c.cfg.MaxTransportRetries, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return Response{}, fmt.Errorf("llm: %s %s: %w", c.b.name(), model, err)
		}
	}
	return Response{}, fmt.Errorf("%w: %s %s failed %d times, last: %w",
		ErrUnavailable, c.b.name(), model, c.cfg.MaxTransportRetries+1, lastErr)
}

func (c *client) attempt(ctx context.Context, model string, req Request) (Response, error) {
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	start := time.Now()
	resp, err := c.b.complete(ctx, model, req)
	if err != nil {
		return Response{}, err
	}
	resp.Latency = time.Since(start)
	return resp, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
