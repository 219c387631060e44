package llm

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// anthropicBackend speaks the Messages API.
type anthropicBackend struct {
	client anthropic.Client
	// requestTimeout is passed explicitly because without one the SDK
	// refuses non-streaming calls whose max_tokens suggests more than ten
	// minutes (large thinking budgets); our context bounds the call anyway.
	requestTimeout time.Duration
}

// defaultAnthropicRequestTimeout applies when Config.Timeout is 0.
const defaultAnthropicRequestTimeout = time.Hour

func newAnthropic(baseURL, key string, timeout time.Duration) *anthropicBackend {
	opts := []option.RequestOption{
		// The SDK's ambient credential chain (profiles, federation) is not
		// ours to trigger; the key was resolved by New.
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(key),
		option.WithMaxRetries(0), // we retry ourselves
		option.WithHTTPClient(&http.Client{}),
	}
	if baseURL != "" {
		opts = append(opts, option.WithBaseURL(baseURL))
	}
	if timeout <= 0 {
		timeout = defaultAnthropicRequestTimeout
	}
	return &anthropicBackend{client: anthropic.NewClient(opts...), requestTimeout: timeout}
}

func (b *anthropicBackend) name() string { return ProviderAnthropic }

func (b *anthropicBackend) complete(ctx context.Context, model string, req Request) (Response, error) {
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	params := anthropic.MessageNewParams{
		Model:    anthropic.Model(model),
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(req.User))},
	}
	if req.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	opts := []option.RequestOption{option.WithRequestTimeout(b.requestTimeout)}
	if req.ThinkingBudget > 0 {
		// max_tokens must exceed the budget; the answer keeps its own room.
		maxTokens += req.ThinkingBudget
		params.Thinking = anthropic.ThinkingConfigParamOfEnabled(int64(req.ThinkingBudget))
		// Extended thinking accepts no temperature but the default.
	} else {
		// This SDK version no longer models temperature; the API accepts it.
		opts = append(opts, option.WithJSONSet("temperature", req.Temperature))
	}
	params.MaxTokens = int64(maxTokens)
	msg, err := b.client.Messages.New(ctx, params, opts...)
	if err != nil {
		return Response{}, err
	}
	var text strings.Builder
	for _, block := range msg.Content {
		if block.Type == "text" {
			text.WriteString(block.Text)
		}
	}
	return Response{
		Text:             text.String(),
		Truncated:        msg.StopReason == anthropic.StopReasonMaxTokens,
		PromptTokens:     int(msg.Usage.InputTokens),
		CompletionTokens: int(msg.Usage.OutputTokens),
	}, nil
}
