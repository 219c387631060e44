package llm

import (
	"context"
	"net/http"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// openaiOfficialBaseURL is pinned so that an OPENAI_BASE_URL in the
// environment cannot silently redirect a run; base_url is the way to do that.
const openaiOfficialBaseURL = "https://api.openai.com/v1/"

// openaiBackend speaks Chat Completions: OpenAI itself, Gemini's
// OpenAI-compatible endpoint, and local OpenAI-compatible servers.
type openaiBackend struct {
	provider string
	official bool // api.openai.com: newer parameter names apply
	client   openai.Client
}

func newOpenAI(provider, baseURL, key string) *openaiBackend {
	official := provider == ProviderOpenAI && baseURL == ""
	if baseURL == "" {
		baseURL = openaiOfficialBaseURL
	}
	opts := []option.RequestOption{
		option.WithBaseURL(baseURL),
		option.WithAPIKey(key),
		option.WithMaxRetries(0), // we retry ourselves
		// Per-attempt deadlines come from the context, so no client timeout.
		option.WithHTTPClient(&http.Client{}),
	}
	if !official {
		// OPENAI_ORG_ID/OPENAI_PROJECT_ID from the environment mean nothing
		// to another server and would leak account names to it.
		opts = append(opts, option.WithHeaderDel("OpenAI-Organization"), option.WithHeaderDel("OpenAI-Project"))
	}
	return &openaiBackend{provider: provider, official: official, client: openai.NewClient(opts...)}
}

func (b *openaiBackend) name() string { return b.provider }

func (b *openaiBackend) complete(ctx context.Context, model string, req Request) (Response, error) {
	var msgs []openai.ChatCompletionMessageParamUnion
	if req.System != "" {
		msgs = append(msgs, openai.SystemMessage(req.System))
	}
	msgs = append(msgs, openai.UserMessage(req.User))
	params := openai.ChatCompletionNewParams{Model: shared.ChatModel(model), Messages: msgs}
	if req.ReasoningEffort != "" {
		// Reasoning models reject any temperature but the default.
		params.ReasoningEffort = shared.ReasoningEffort(req.ReasoningEffort)
	} else {
		params.Temperature = openai.Float(req.Temperature)
	}
	if req.MaxTokens > 0 {
		if b.official {
			params.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
		} else {
			// Compatible servers (vLLM, Ollama, llama.cpp, Gemini) all
			// understand the older name.
			params.MaxTokens = openai.Int(int64(req.MaxTokens))
		}
	}
	var opts []option.RequestOption
	if b.provider == ProviderGoogle && req.ThinkingBudget > 0 {
		// Gemini's documented way to pass its thinking budget through the
		// OpenAI-compatible API.
		opts = append(opts, option.WithJSONSet("extra_body", map[string]any{
			"google": map[string]any{"thinking_config": map[string]any{"thinking_budget": req.ThinkingBudget}},
		}))
	}
	cc, err := b.client.Chat.Completions.New(ctx, params, opts...)
	if err != nil {
		return Response{}, err
	}
	var text string
	truncated := false
	if len(cc.Choices) > 0 {
		text = cc.Choices[0].Message.Content
		truncated = cc.Choices[0].FinishReason == "length"
	}
	return Response{
		Text:             text,
		Truncated:        truncated,
		PromptTokens:     int(cc.Usage.PromptTokens),
		CompletionTokens: int(cc.Usage.CompletionTokens),
	}, nil
}
