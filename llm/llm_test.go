package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"simcash/llm/llmtest"
)

// reply is one scripted HTTP answer of the shared fake provider.
type reply = llmtest.Reply

// recorded is what the fake server saw, body decoded.
type recorded struct {
	path   string
	header http.Header
	body   map[string]any
}

// fakeServer adapts llmtest.Server to these tests' recorded requests.
type fakeServer struct{ srv *llmtest.Server }

func newFakeServer(t *testing.T, wantPath string, replies ...reply) *fakeServer {
	t.Helper()
	return &fakeServer{srv: llmtest.New(t, wantPath, replies...)}
}

func (f *fakeServer) requests() []recorded {
	var out []recorded
	for _, r := range f.srv.Requests() {
		out = append(out, recorded{path: r.Path, header: r.Header, body: r.JSON()})
	}
	return out
}

func openaiOK(text string, prompt, completion int) reply {
	return llmtest.OpenAI(text, prompt, completion)
}

func openaiErr(status int, msg string) reply {
	return llmtest.OpenAIError(status, "invalid_request_error", msg)
}

func anthropicOK(text string, in, out int) reply {
	return llmtest.Anthropic(text, in, out, "let me think")
}

// anthropicKey returns the key however the SDK sent it (this SDK version
// uses a bearer token; older ones used x-api-key).
func anthropicKey(h http.Header) string {
	if k := h.Get("X-Api-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
}

func anthropicErr(status int, typ, msg string) reply { return llmtest.AnthropicError(status, typ, msg) }

// provider bundles what differs between the two wire formats.
type provider struct {
	name    string
	path    string
	baseURL func(srvURL string) string
	ok      func(text string, in, out int) reply
	err     func(status int) reply
}

var providers = []provider{
	{
		name: ProviderOpenAI, path: llmtest.OpenAIPath,
		baseURL: func(u string) string { return u + "/v1/" },
		ok:      openaiOK,
		err:     func(s int) reply { return openaiErr(s, http.StatusText(s)) },
	},
	{
		name: ProviderAnthropic, path: llmtest.AnthropicPath,
		baseURL: func(u string) string { return u },
		ok:      anthropicOK,
		err:     func(s int) reply { return anthropicErr(s, "api_error", http.StatusText(s)) },
	},
}

func noBackoff(int) time.Duration { return 0 }

func newTestClient(t *testing.T, p provider, f *fakeServer, mod func(*Config)) Client {
	t.Helper()
	cfg := Config{
		Provider: p.name, Model: "test-model", BaseURL: p.baseURL(f.srv.URL), APIKey: "test-key",
		Timeout: 5 * time.Second, MaxTransportRetries: 2, Backoff: noBackoff,
		Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestOpenAIRequestAndResponse(t *testing.T) {
	f := newFakeServer(t, llmtest.OpenAIPath, openaiOK(`{"version":"1.0"}`, 120, 45))
	c := newTestClient(t, providers[0], f, nil)
	resp, err := c.Complete(context.Background(), Request{System: "sys text", User: "user text", Temperature: 0.5, MaxTokens: 300})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if resp.Text != `{"version":"1.0"}` || resp.PromptTokens != 120 || resp.CompletionTokens != 45 || resp.Retries != 0 {
		t.Errorf("response = %+v", resp)
	}
	if resp.Latency <= 0 {
		t.Errorf("latency %v not measured", resp.Latency)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	body := reqs[0].body
	if body["model"] != "test-model" || body["temperature"] != 0.5 || body["max_tokens"] != 300.0 {
		t.Errorf("body model/temperature/max_tokens = %v/%v/%v", body["model"], body["temperature"], body["max_tokens"])
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("messages = %v", body["messages"])
	}
	sys, user := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if sys["role"] != "system" || sys["content"] != "sys text" || user["role"] != "user" || user["content"] != "user text" {
		t.Errorf("messages = %v", msgs)
	}
	if got := reqs[0].header.Get("Authorization"); got != "Bearer test-key" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestOpenAIReasoningEffortOmitsTemperature(t *testing.T) {
	f := newFakeServer(t, llmtest.OpenAIPath, openaiOK("x", 1, 1))
	c := newTestClient(t, providers[0], f, nil)
	if _, err := c.Complete(context.Background(), Request{User: "u", Model: "override", Temperature: 0.7, ReasoningEffort: "high"}); err != nil {
		t.Fatal(err)
	}
	body := f.requests()[0].body
	if body["reasoning_effort"] != "high" || body["model"] != "override" {
		t.Errorf("reasoning_effort/model = %v/%v", body["reasoning_effort"], body["model"])
	}
	if _, ok := body["temperature"]; ok {
		t.Errorf("temperature sent with reasoning_effort: %v", body["temperature"])
	}
	if _, ok := body["max_tokens"]; ok {
		t.Errorf("max_tokens sent although MaxTokens is 0")
	}
}

func TestAnthropicRequestAndResponse(t *testing.T) {
	tests := []struct {
		name          string
		req           Request
		wantMaxTokens float64
		wantTemp      any // nil: absent
		wantThinking  map[string]any
	}{
		{
			name:          "plain",
			req:           Request{System: "sys text", User: "user text", Temperature: 0.25, MaxTokens: 1000},
			wantMaxTokens: 1000, wantTemp: 0.25,
		},
		{
			name:          "default max tokens, zero temperature sent",
			req:           Request{System: "sys text", User: "user text"},
			wantMaxTokens: DefaultMaxTokens, wantTemp: 0.0,
		},
		{
			// Above the SDK's ten-minute non-streaming estimate.
			name:          "large thinking budget, default max tokens",
			req:           Request{User: "user text", System: "sys text", ThinkingBudget: 32000},
			wantMaxTokens: 32000 + DefaultMaxTokens,
			wantThinking:  map[string]any{"type": "enabled", "budget_tokens": 32000.0},
		},
		{
			name:          "thinking budget",
			req:           Request{System: "sys text", User: "user text", Temperature: 0.5, MaxTokens: 1000, ThinkingBudget: 2048},
			wantMaxTokens: 3048,
			wantThinking:  map[string]any{"type": "enabled", "budget_tokens": 2048.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t, llmtest.AnthropicPath, anthropicOK("the answer", 77, 33))
			c := newTestClient(t, providers[1], f, nil)
			resp, err := c.Complete(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if resp.Text != "the answer" || resp.PromptTokens != 77 || resp.CompletionTokens != 33 || resp.Latency <= 0 {
				t.Errorf("response = %+v", resp)
			}
			r := f.requests()[0]
			if got := anthropicKey(r.header); got != "test-key" {
				t.Errorf("API key sent = %q", got)
			}
			if r.header.Get("Anthropic-Version") == "" {
				t.Error("no anthropic-version header")
			}
			b := r.body
			if b["model"] != "test-model" || b["max_tokens"] != tt.wantMaxTokens {
				t.Errorf("model/max_tokens = %v/%v", b["model"], b["max_tokens"])
			}
			if temp, ok := b["temperature"]; tt.wantTemp == nil && ok || tt.wantTemp != nil && temp != tt.wantTemp {
				t.Errorf("temperature = %v (present %v), want %v", temp, ok, tt.wantTemp)
			}
			sys, _ := b["system"].([]any)
			if len(sys) != 1 || sys[0].(map[string]any)["text"] != "sys text" {
				t.Errorf("system = %v", b["system"])
			}
			msgs, _ := b["messages"].([]any)
			if len(msgs) != 1 || !strings.Contains(fmt.Sprint(msgs[0]), "user text") {
				t.Errorf("messages = %v", b["messages"])
			}
			th, _ := b["thinking"].(map[string]any)
			if fmt.Sprint(th) != fmt.Sprint(tt.wantThinking) && !(th == nil && tt.wantThinking == nil) {
				t.Errorf("thinking = %v, want %v", b["thinking"], tt.wantThinking)
			}
		})
	}
}

func TestTransportRetries(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			tests := []struct {
				name        string
				replies     []reply
				wantErr     error // nil: success
				wantPerm    string
				wantCalls   int
				wantRetries int
			}{
				{name: "429 then success", replies: []reply{p.err(429), p.ok("ok", 1, 1)}, wantCalls: 2, wantRetries: 1},
				{name: "503 503 then success", replies: []reply{p.err(503), p.err(503), p.ok("ok", 1, 1)}, wantCalls: 3, wantRetries: 2},
				{name: "500 three times", replies: []reply{p.err(500)}, wantErr: ErrUnavailable, wantCalls: 3},
				{name: "401 fails at once", replies: []reply{p.err(401)}, wantPerm: "API key", wantCalls: 1},
				{name: "404 fails at once", replies: []reply{p.err(404)}, wantPerm: "unknown model", wantCalls: 1},
				{name: "400 fails at once", replies: []reply{p.err(400)}, wantPerm: "rejected", wantCalls: 1},
				{name: "non-JSON 200 fails at once", replies: []reply{{Status: 200, Body: "<html>proxy login</html>"}}, wantPerm: "llm: " + p.name, wantCalls: 1},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					f := newFakeServer(t, p.path, tt.replies...)
					c := newTestClient(t, p, f, nil)
					resp, err := c.Complete(context.Background(), Request{User: "u"})
					if got := len(f.requests()); got != tt.wantCalls {
						t.Errorf("%d calls, want %d", got, tt.wantCalls)
					}
					switch {
					case tt.wantErr != nil:
						if !errors.Is(err, tt.wantErr) {
							t.Fatalf("err = %v, want %v", err, tt.wantErr)
						}
					case tt.wantPerm != "":
						if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.wantPerm) {
							t.Fatalf("err = %v, want a permanent error mentioning %q", err, tt.wantPerm)
						}
					default:
						if err != nil {
							t.Fatalf("Complete: %v", err)
						}
						if resp.Retries != tt.wantRetries || resp.Text != "ok" {
							t.Errorf("response = %+v, want %d retries", resp, tt.wantRetries)
						}
					}
				})
			}
		})
	}
}

func TestTruncatedAnswer(t *testing.T) {
	cut := map[string]reply{
		ProviderOpenAI: {Status: 200, Body: `{"id":"c","object":"chat.completion","created":1,"model":"m",` +
			`"choices":[{"index":0,"finish_reason":"length","message":{"role":"assistant","content":"{\"version\":","refusal":null}}],` +
			`"usage":{"prompt_tokens":5,"completion_tokens":100,"total_tokens":105}}`},
		ProviderAnthropic: {Status: 200, Body: `{"id":"m","type":"message","role":"assistant","model":"m",` +
			`"content":[{"type":"text","text":"{\"version\":"}],"stop_reason":"max_tokens","stop_sequence":null,` +
			`"usage":{"input_tokens":5,"output_tokens":100}}`},
	}
	for _, p := range providers {
		for _, truncated := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s truncated=%v", p.name, truncated), func(t *testing.T) {
				rep := p.ok("complete", 1, 1)
				if truncated {
					rep = cut[p.name]
				}
				f := newFakeServer(t, p.path, rep)
				resp, err := newTestClient(t, p, f, nil).Complete(context.Background(), Request{User: "u", MaxTokens: 100})
				if err != nil {
					t.Fatal(err)
				}
				if resp.Truncated != truncated {
					t.Errorf("Truncated = %v, want %v (text %q)", resp.Truncated, truncated, resp.Text)
				}
			})
		}
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			f := newFakeServer(t, p.path, reply{Block: true})
			c := newTestClient(t, p, f, func(c *Config) { c.Timeout = 50 * time.Millisecond; c.MaxTransportRetries = 1 })
			_, err := c.Complete(context.Background(), Request{User: "u"})
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if got := len(f.requests()); got != 2 {
				t.Errorf("%d calls, want 2", got)
			}
		})
	}
}

func TestTimeoutThenSuccess(t *testing.T) {
	p := providers[0]
	f := newFakeServer(t, p.path, reply{Block: true}, p.ok("late but fine", 3, 4))
	c := newTestClient(t, p, f, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	resp, err := c.Complete(context.Background(), Request{User: "u"})
	if err != nil || resp.Retries != 1 || resp.Text != "late but fine" {
		t.Fatalf("resp = %+v, err = %v", resp, err)
	}
}

func TestConnectionRefusedIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := New(Config{Provider: ProviderOpenAI, Model: "m", BaseURL: url + "/v1/", MaxTransportRetries: 1, Backoff: noBackoff})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), Request{User: "u"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"retry-after-ms", map[string]string{"Retry-After-Ms": "120"}, 120 * time.Millisecond},
		{"retry-after seconds", map[string]string{"Retry-After": "0.15"}, 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := providers[0]
			limited := p.err(429)
			limited.Header = tt.header
			f := newFakeServer(t, p.path, limited, p.ok("ok", 1, 1))
			var backoffCalls []int
			c := newTestClient(t, p, f, func(c *Config) {
				c.Backoff = func(a int) time.Duration { backoffCalls = append(backoffCalls, a); return 0 }
			})
			start := time.Now()
			resp, err := c.Complete(context.Background(), Request{User: "u"})
			if err != nil || resp.Retries != 1 {
				t.Fatalf("resp = %+v, err = %v", resp, err)
			}
			if el := time.Since(start); el < tt.want {
				t.Errorf("returned after %v, Retry-After asked for %v", el, tt.want)
			}
			if fmt.Sprint(backoffCalls) != "[1]" {
				t.Errorf("backoff called with %v, want [1]", backoffCalls)
			}
		})
	}
}

func TestCallerCancelIsNotUnavailable(t *testing.T) {
	p := providers[0]
	f := newFakeServer(t, p.path, p.err(503))
	ctx, cancel := context.WithCancel(context.Background())
	c := newTestClient(t, p, f, func(c *Config) {
		c.MaxTransportRetries = 5
		// Cancel while waiting to retry: Complete must stop at once.
		c.Backoff = func(int) time.Duration { cancel(); return time.Hour }
	})
	_, err := c.Complete(ctx, Request{User: "u"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want context.Canceled only", err)
	}
}

func TestAPIKeys(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"} {
		t.Setenv(k, "")
	}
	tests := []struct {
		name       string
		provider   provider
		env        map[string]string
		noBaseURL  bool
		wantNewErr string
		header     string
		want       string
	}{
		{name: "openai env key", provider: providers[0], env: map[string]string{"OPENAI_API_KEY": "sk-env"}, header: "Authorization", want: "Bearer sk-env"},
		{name: "anthropic env key", provider: providers[1], env: map[string]string{"ANTHROPIC_API_KEY": "ak-env"}, header: "Authorization", want: "Bearer ak-env"},
		{name: "google gemini key", provider: provider{name: ProviderGoogle, path: llmtest.OpenAIPath, baseURL: providers[0].baseURL, ok: openaiOK},
			env: map[string]string{"GEMINI_API_KEY": "g-env"}, header: "Authorization", want: "Bearer g-env"},
		{name: "google key wins over gemini", provider: provider{name: ProviderGoogle, path: llmtest.OpenAIPath, baseURL: providers[0].baseURL, ok: openaiOK},
			env: map[string]string{"GOOGLE_API_KEY": "g1", "GEMINI_API_KEY": "g2"}, header: "Authorization", want: "Bearer g1"},
		{name: "local server needs no key", provider: providers[0], header: "Authorization", want: "Bearer " + placeholderKey},
		{name: "local anthropic-compatible needs no key", provider: providers[1], header: "Authorization", want: "Bearer " + placeholderKey},
		{name: "openai without key", provider: providers[0], noBaseURL: true, wantNewErr: "OPENAI_API_KEY"},
		{name: "anthropic without key", provider: providers[1], noBaseURL: true, wantNewErr: "ANTHROPIC_API_KEY"},
		{name: "google without key", provider: provider{name: ProviderGoogle}, noBaseURL: true, wantNewErr: "GEMINI_API_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg := Config{Provider: tt.provider.name, Model: "m", Backoff: noBackoff}
			var f *fakeServer
			if !tt.noBaseURL {
				f = newFakeServer(t, tt.provider.path, tt.provider.ok("ok", 1, 1))
				cfg.BaseURL = tt.provider.baseURL(f.srv.URL)
			}
			c, err := New(cfg)
			if tt.wantNewErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantNewErr) {
					t.Fatalf("New err = %v, want mention of %s", err, tt.wantNewErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Complete(context.Background(), Request{User: "u"}); err != nil {
				t.Fatal(err)
			}
			if got := f.requests()[0].header.Get(tt.header); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestGoogleThinkingBudget(t *testing.T) {
	f := newFakeServer(t, llmtest.OpenAIPath, openaiOK("ok", 1, 1))
	c, err := New(Config{Provider: ProviderGoogle, Model: "gemini-x", BaseURL: f.srv.URL + "/v1/", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), Request{User: "u", ThinkingBudget: 512}); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(f.requests()[0].body["extra_body"])
	if want := "map[google:map[thinking_config:map[thinking_budget:512]]]"; got != want {
		t.Errorf("extra_body = %s, want %s", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Provider: "mistral", APIKey: "k"}, "unknown provider"},
		{Config{Provider: ProviderOpenAI, APIKey: "k", MaxTransportRetries: -1}, "MaxTransportRetries"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) err = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	c, err := New(Config{Provider: ProviderOpenAI, APIKey: "k", BaseURL: "http://127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(context.Background(), Request{User: "u"}); err == nil || !strings.Contains(err.Error(), "no model") {
		t.Errorf("Complete without model: err = %v", err)
	}
}

func TestParseModel(t *testing.T) {
	tests := []struct {
		in, provider, model string
		wantErr             bool
	}{
		{"openai:gpt-5.2", "openai", "gpt-5.2", false},
		{"anthropic:claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", false},
		{"openai:org/model:tag", "openai", "org/model:tag", false},
		{"gpt-5", "", "", true},
		{":m", "", "", true},
		{"openai:", "", "", true},
	}
	for _, tt := range tests {
		p, m, err := ParseModel(tt.in)
		if (err != nil) != tt.wantErr || p != tt.provider || m != tt.model {
			t.Errorf("ParseModel(%q) = %q, %q, %v", tt.in, p, m, err)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := DefaultBackoff(i + 1); got != w {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestJittered(t *testing.T) {
	j := Jittered(DefaultBackoff)
	seen := map[time.Duration]bool{}
	for range 200 {
		d := j(3) // DefaultBackoff(3) = 4s
		if d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("jittered wait %v outside [2s, 4s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("%d distinct waits in 200: not jittered", len(seen))
	}
}
