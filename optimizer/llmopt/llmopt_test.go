package llmopt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"simcash/llm"
	"simcash/optimizer"
	"simcash/policy"
)

const goodPolicy = `{"version":"1.0","policy_id":"p","parameters":{"initial_liquidity_fraction":0.2},` +
	`"payment_tree":{"type":"action","node_id":"A1","action":"Release","parameters":{}},` +
	`"bank_tree":{"type":"action","node_id":"B1","action":"NoAction","parameters":{}}}`

// chatServer speaks OpenAI Chat Completions with scripted answers (status,
// content); the last one repeats. It records every request body.
type chatServer struct {
	srv *httptest.Server

	mu      sync.Mutex
	answers []scripted
	bodies  []map[string]any
}

type scripted struct {
	status  int
	content string
	finish  string // finish_reason; "" means "stop"
}

func newChatServer(t *testing.T, answers ...scripted) *chatServer {
	t.Helper()
	s := &chatServer{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		a := s.answers[min(len(s.bodies)-1, len(s.answers)-1)]
		s.mu.Unlock()
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if a.status != http.StatusOK {
			w.WriteHeader(a.status)
			fmt.Fprintf(w, `{"error":{"message":%q,"type":"server_error","param":null,"code":null}}`, http.StatusText(a.status))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-x", "object": "chat.completion", "created": 1700000000, "model": "gpt-test",
			"choices": []any{map[string]any{"index": 0, "finish_reason": cmp.Or(a.finish, "stop"),
				"message": map[string]any{"role": "assistant", "content": a.content, "refusal": nil}}},
			"usage": map[string]any{"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290},
		})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *chatServer) requests() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

func ok(content string) scripted { return scripted{status: http.StatusOK, content: content} }

func newOpt(t *testing.T, baseURL string, cfg Config) optimizer.Optimizer {
	t.Helper()
	c, err := llm.New(llm.Config{
		Provider: llm.ProviderOpenAI, BaseURL: baseURL, Timeout: 5 * time.Second,
		MaxTransportRetries: 2, Backoff: func(int) time.Duration { return 0 },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model == "" {
		cfg.Model = "openai:gpt-test"
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	return New(c, cfg)
}

func f64(v float64) *float64 { return &v }

func exp1Request(agent string) optimizer.Request {
	return optimizer.Request{
		Agent: agent, Iteration: 3, Attempt: 1,
		CurrentPolicy: json.RawMessage(goodPolicy),
		Constraints: optimizer.Constraints{
			Parameters: []optimizer.AllowedParameter{{
				Name: "initial_liquidity_fraction", Type: "float", Min: f64(0), Max: f64(1),
				Description: "Fraction of liquidity_pool to allocate at simulation start.",
			}},
			Fields:  []string{"system_tick_in_day", "balance", "ticks_to_deadline"},
			Actions: map[string][]string{"payment_tree": {"Release", "Hold"}, "bank_tree": {"NoAction"}},
		},
		Costs:     optimizer.AgentCosts{Liquidity: 5000, Total: 5000},
		CostRates: map[string]float64{"liquidity_cost_per_tick_bps": 500, "delay_cost_per_tick_per_cent": 0.2},
	}
}

func TestProposeParsesAnswers(t *testing.T) {
	tests := []struct {
		name      string
		answer    string
		wantErr   string // substring of ParseError; "" means a policy is expected
		wantMatch string // expected compact policy
	}{
		{name: "bare policy", answer: goodPolicy, wantMatch: goodPolicy},
		{name: "fenced json with prose", answer: "Lower the fraction.\n```json\n" + goodPolicy + "\n```\nDone.", wantMatch: goodPolicy},
		{name: "fence without language", answer: "```\n" + goodPolicy + "\n```", wantMatch: goodPolicy},
		{name: "indented answer is compacted", answer: "Here:\n" + indent(goodPolicy), wantMatch: goodPolicy},
		{name: "prose braces before the policy", answer: "Set {fraction} lower. " + goodPolicy, wantMatch: goodPolicy},
		{name: "think block draft ignored", answer: `<think>maybe {"x":1}</think>` + goodPolicy, wantMatch: goodPolicy},
		{name: "parameter snippet before the policy", answer: `I will set {"initial_liquidity_fraction": 0.2}:` + "\n```json\n" + goodPolicy + "\n```", wantMatch: goodPolicy},
		{name: "draft fence then final fence", answer: "Draft:\n```json\n{\"x\": 1}\n```\nFinal:\n```json\n" + goodPolicy + "\n```", wantMatch: goodPolicy},
		{name: "stray open brace in prose", answer: "Use a { here. " + goodPolicy, wantMatch: goodPolicy},
		{name: "truncated policy with complete inner nodes", answer: goodPolicy[:len(goodPolicy)-3], wantErr: "never closed"},
		{name: "non-policy object only", answer: `{"initial_liquidity_fraction": 0.2}`, wantMatch: `{"initial_liquidity_fraction":0.2}`},
		{name: "parameters-only document after a snippet", answer: `Was {"x": 1}. Now {"parameters": {"initial_liquidity_fraction": 0.1}}`, wantMatch: `{"parameters":{"initial_liquidity_fraction":0.1}}`},
		{name: "braces inside strings", answer: `{"description":"a } b {","version":"1.0"}`, wantMatch: `{"description":"a } b {","version":"1.0"}`},
		{name: "malformed json", answer: `{"version": "1.0", "parameters": {"initial_liquidity_fraction": 0.2,}}`, wantErr: "invalid JSON"},
		{name: "truncated answer", answer: "```json\n" + goodPolicy[:60], wantErr: "never closed"},
		{name: "no json at all", answer: "I would lower the fraction to 0.2.", wantErr: "no JSON object"},
		{name: "empty answer", answer: "  ", wantErr: "empty answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newChatServer(t, ok(tt.answer))
			opt := newOpt(t, srv.srv.URL+"/v1/", Config{Temperature: 0.5})
			prop, err := opt.Propose(context.Background(), exp1Request("BANK_A"))
			if err != nil {
				t.Fatalf("Propose returned an error for a bad answer: %v", err)
			}
			in := prop.Interaction
			if in == nil {
				t.Fatal("no Interaction")
			}
			if in.RawResponse != tt.answer || in.Model != "openai:gpt-test" || in.PromptTokens != 1234 ||
				in.CompletionTokens != 56 || in.LatencySeconds <= 0 || in.SystemPrompt == "" || in.UserPrompt == "" {
				t.Errorf("interaction = %+v", in)
			}
			if in.ParseError != prop.ParseError {
				t.Errorf("interaction parse error %q != proposal's %q", in.ParseError, prop.ParseError)
			}
			if tt.wantErr != "" {
				if !strings.Contains(prop.ParseError, tt.wantErr) || prop.Policy != nil || in.ParsedPolicy != nil {
					t.Errorf("ParseError = %q, policy = %s; want error containing %q", prop.ParseError, prop.Policy, tt.wantErr)
				}
				return
			}
			if prop.ParseError != "" || string(prop.Policy) != tt.wantMatch || string(in.ParsedPolicy) != tt.wantMatch {
				t.Errorf("policy = %s (parse error %q), want %s", prop.Policy, prop.ParseError, tt.wantMatch)
			}
		})
	}
}

func TestProposeTruncatedAnswerSaysSo(t *testing.T) {
	for _, finish := range []string{"stop", "length"} {
		t.Run(finish, func(t *testing.T) {
			srv := newChatServer(t, scripted{status: http.StatusOK, content: "```json\n" + goodPolicy[:50], finish: finish})
			prop, err := newOpt(t, srv.srv.URL+"/v1/", Config{}).Propose(context.Background(), exp1Request("BANK_A"))
			if err != nil {
				t.Fatal(err)
			}
			hinted := strings.Contains(prop.ParseError, "raise llm.max_tokens")
			if prop.ParseError == "" || hinted != (finish == "length") {
				t.Errorf("finish %s: ParseError = %q", finish, prop.ParseError)
			}
		})
	}
}

func indent(s string) string {
	var buf bytes.Buffer
	_ = json.Indent(&buf, []byte(s), "", "    ")
	return buf.String()
}

func TestProposeRequestBody(t *testing.T) {
	srv := newChatServer(t, ok(goodPolicy))
	opt := newOpt(t, srv.srv.URL+"/v1/", Config{Temperature: 0.5, MaxTokens: 2000})
	if _, err := opt.Propose(context.Background(), exp1Request("BANK_A")); err != nil {
		t.Fatal(err)
	}
	body := srv.requests()[0]
	if body["model"] != "gpt-test" || body["temperature"] != 0.5 || body["max_tokens"] != 2000.0 {
		t.Errorf("model/temperature/max_tokens = %v/%v/%v", body["model"], body["temperature"], body["max_tokens"])
	}
	msgs := body["messages"].([]any)
	system := msgs[0].(map[string]any)["content"].(string)
	user := msgs[1].(map[string]any)["content"].(string)
	for _, want := range []string{"RTGS", "Q1", "Q2", "initial_liquidity_fraction", "liquidity_cost_per_tick_bps = 500"} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks %q", want)
		}
	}
	for _, want := range []string{"BANK_A", "$50.00 (5000 cents)", `"policy_id": "p"`} {
		if !strings.Contains(user, want) {
			t.Errorf("user prompt lacks %q", want)
		}
	}
}

func TestProposeTransport(t *testing.T) {
	t.Run("429 then success counts a retry", func(t *testing.T) {
		srv := newChatServer(t, scripted{status: http.StatusTooManyRequests}, ok(goodPolicy))
		prop, err := newOpt(t, srv.srv.URL+"/v1/", Config{}).Propose(context.Background(), exp1Request("BANK_A"))
		if err != nil || prop.Interaction.TransportRetries != 1 || string(prop.Policy) != goodPolicy {
			t.Fatalf("prop = %+v, err = %v", prop, err)
		}
	})
	t.Run("provider down is an error with the prompts kept", func(t *testing.T) {
		srv := newChatServer(t, scripted{status: http.StatusInternalServerError})
		prop, err := newOpt(t, srv.srv.URL+"/v1/", Config{}).Propose(context.Background(), exp1Request("BANK_A"))
		if !errors.Is(err, llm.ErrUnavailable) {
			t.Fatalf("err = %v, want llm.ErrUnavailable", err)
		}
		if len(srv.requests()) != 3 {
			t.Errorf("%d calls, want 3", len(srv.requests()))
		}
		if prop.Interaction == nil || prop.Interaction.UserPrompt == "" || prop.Policy != nil {
			t.Errorf("proposal = %+v", prop)
		}
	})
}

func TestAnthropicThinkingBudgetPassesThrough(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &got)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
			"content":     []any{map[string]any{"type": "text", "text": "```json\n" + goodPolicy + "\n```"}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": 900, "output_tokens": 80},
		})
	}))
	defer srv.Close()
	c, err := llm.New(llm.Config{Provider: llm.ProviderAnthropic, BaseURL: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	opt := New(c, Config{Model: "anthropic:claude-test", MaxTokens: 1000, ThinkingBudget: 4000, Logger: slog.New(slog.DiscardHandler)})
	prop, err := opt.Propose(context.Background(), exp1Request("BANK_A"))
	if err != nil || string(prop.Policy) != goodPolicy || prop.Interaction.PromptTokens != 900 {
		t.Fatalf("prop = %+v, err = %v", prop, err)
	}
	if got["model"] != "claude-test" || fmt.Sprint(got["thinking"]) != "map[budget_tokens:4000 type:enabled]" || got["max_tokens"] != 5000.0 {
		t.Errorf("body model/thinking/max_tokens = %v/%v/%v", got["model"], got["thinking"], got["max_tokens"])
	}
}

func TestSystemPromptFollowsConstraints(t *testing.T) {
	req := exp1Request("BANK_A")
	req.Customization = "Focus on the initial_liquidity_fraction parameter."
	system, _ := Prompts("", req)
	for _, want := range []string{
		"- initial_liquidity_fraction (float, 0 to 1): Fraction of liquidity_pool",
		"Fields you may read (transaction fields only in payment_tree):\nsystem_tick_in_day, balance, ticks_to_deadline\n",
		"  - Release:", "  - Hold:", "  - NoAction:",
		"- strategic_collateral_tree: not allowed here",
		"- end_of_tick_collateral_tree: not allowed here",
		"liquidity_cost_per_tick_bps = 500 (basis points",
		"delay_cost_per_tick_per_cent = 0.2",
		"## Notes for this experiment\nFocus on the initial_liquidity_fraction parameter.",
		"```json",
	} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks %q", want)
		}
	}
	for _, banned := range []string{"  - Split:", "  - Drop:", "  - PostCollateral:", "effective_liquidity"} {
		if strings.Contains(system, banned) {
			t.Errorf("system prompt offers %q, which the constraints do not allow", banned)
		}
	}

	t.Run("no constraints offers everything", func(t *testing.T) {
		r := exp1Request("BANK_A")
		r.Constraints = optimizer.Constraints{}
		s, _ := Prompts("", r)
		for _, want := range []string{"  - Split:", "  - PostCollateral:", "effective_liquidity", "initial_liquidity_fraction (float, 0.0 to 1.0)",
			"Required: max_value_to_release. Optional: max_per_counterparty", "Required: key, value."} {
			if !strings.Contains(s, want) {
				t.Errorf("system prompt lacks %q", want)
			}
		}
	})

	t.Run("override replaces the domain text only", func(t *testing.T) {
		s, _ := Prompts("You are a cautious treasurer.", req)
		if !strings.HasPrefix(s, "You are a cautious treasurer.") || strings.Contains(s, "expert in payment-system") {
			t.Errorf("override not applied:\n%s", s[:200])
		}
		if !strings.Contains(s, "liquidity_cost_per_tick_bps = 500") || !strings.Contains(s, "  - Release:") {
			t.Error("override dropped the rates or the constraints")
		}
	})

	t.Run("enum and one-sided bounds", func(t *testing.T) {
		r := exp1Request("BANK_A")
		r.Constraints.Parameters = []optimizer.AllowedParameter{
			{Name: "mode", Type: "enum", AllowedValues: []any{"a", "b"}},
			{Name: "urgency_threshold", Type: "int", Min: f64(0)},
		}
		s, _ := Prompts("", r)
		for _, want := range []string{`- mode (enum, one of ["a","b"])`, "- urgency_threshold (int, at least 0)"} {
			if !strings.Contains(s, want) {
				t.Errorf("system prompt lacks %q", want)
			}
		}
	})
}

// TestEveryActionDescribed guards against the engine gaining an action the
// prompt cannot explain.
func TestEveryActionDescribed(t *testing.T) {
	for tr := policy.Tree(0); tr < policy.NumTrees; tr++ {
		for _, k := range policy.ActionsFor(tr) {
			if actionRoles[k.String()] == "" {
				t.Errorf("action %s (%s) has no description in actionRoles", k, tr)
			}
		}
	}
}

func TestUserPromptHistoryAndRetry(t *testing.T) {
	req := exp1Request("BANK_A")
	req.Attempt = 2
	req.History = []optimizer.HistoryEntry{
		{Iteration: 1, Params: map[string]float64{"initial_liquidity_fraction": 0.3}, OldCost: 5000, NewCost: 3000, Accepted: true, Reason: "cost decreased"},
		{Iteration: 2, Params: map[string]float64{"initial_liquidity_fraction": 0.1}, OldCost: 3000, NewCost: 103000, Reason: "cost increased",
			Policy: json.RawMessage(`{"version": "1.0"}`)},
	}
	req.EventSummary = "2 payments settled, 1 queued in Q2 at tick 1"
	req.PreviousErrors = []string{"parameter initial_liquidity_fraction = 1.5 is above its maximum 1", "unknown field foo in node N1"}
	_, user := Prompts("", req)
	for _, want := range []string{
		"Iteration 3, attempt 2",
		"- iteration 1: ACCEPTED; cost $50.00 (5000 cents) -> $30.00 (3000 cents); parameters initial_liquidity_fraction=0.3; cost decreased",
		"- iteration 2: REJECTED; cost $30.00 (3000 cents) -> $1030.00 (103000 cents); parameters initial_liquidity_fraction=0.1",
		`policy: {"version":"1.0"}`,
		"2 payments settled, 1 queued in Q2",
		"- parameter initial_liquidity_fraction = 1.5 is above its maximum 1\n- unknown field foo in node N1\n",
		"- TOTAL: $50.00 (5000 cents)",
	} {
		if !strings.Contains(user, want) {
			t.Errorf("user prompt lacks %q\n%s", want, user)
		}
	}
	_, first := Prompts("", exp1Request("BANK_A"))
	if strings.Contains(first, "invalid") || strings.Contains(first, "attempt") || !strings.Contains(first, "(none yet)") {
		t.Errorf("first attempt prompt mentions retries or history:\n%s", first)
	}
}

// TestPromptsHoldOnlyTheAgentsOwnData sends two agents' requests through a
// real server and checks neither saw the other's id, costs or events.
func TestPromptsHoldOnlyTheAgentsOwnData(t *testing.T) {
	a := exp1Request("BANK_A")
	a.Costs = optimizer.AgentCosts{Liquidity: 11111, Delay: 22222, Total: 33333}
	a.EventSummary = "BANK_A event: payment tx-alpha settled at tick 1"
	a.History = []optimizer.HistoryEntry{{Iteration: 1, OldCost: 44444, NewCost: 33333, Accepted: true}}
	b := exp1Request("BANK_B")
	b.Costs = optimizer.AgentCosts{Delay: 77777, EODPenalty: 88888, Total: 166665}
	b.EventSummary = "BANK_B event: payment tx-beta queued"
	b.History = []optimizer.HistoryEntry{{Iteration: 1, OldCost: 99999, NewCost: 166665}}

	srv := newChatServer(t, ok(goodPolicy))
	opt := newOpt(t, srv.srv.URL+"/v1/", Config{})
	for _, r := range []optimizer.Request{a, b} {
		if _, err := opt.Propose(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.requests()
	sent := func(i int) string { b, _ := json.Marshal(reqs[i]["messages"]); return string(b) }
	check := func(who, prompt string, own, foreign []string) {
		for _, s := range own {
			if !strings.Contains(prompt, s) {
				t.Errorf("%s's prompt lacks its own %q", who, s)
			}
		}
		for _, s := range foreign {
			if strings.Contains(prompt, s) {
				t.Errorf("%s's prompt contains the other agent's %q", who, s)
			}
		}
	}
	aData := []string{"BANK_A", "11111", "22222", "33333", "44444", "tx-alpha"}
	bData := []string{"BANK_B", "77777", "88888", "166665", "99999", "tx-beta"}
	check("BANK_A", sent(0), aData, bData)
	check("BANK_B", sent(1), bData, aData)
}

func TestProviderModel(t *testing.T) {
	for in, want := range map[string]string{
		"openai:gpt-5.2":           "gpt-5.2",
		"anthropic:claude-x":       "claude-x",
		"google:gemini-2.5-pro":    "gemini-2.5-pro",
		"llama3:8b":                "llama3:8b",
		"gpt-test":                 "gpt-test",
		"openai:qwen/qwen3:latest": "qwen/qwen3:latest",
	} {
		if got := providerModel(in); got != want {
			t.Errorf("providerModel(%q) = %q, want %q", in, got, want)
		}
	}
}
