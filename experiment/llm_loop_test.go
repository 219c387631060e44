package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"simcash/llm"
	"simcash/llm/llmtest"
	"simcash/optimizer/llmopt"
	"simcash/schema"
)

// These tests run the experiment loop with the real language-model
// optimizer (llmopt over llm.New) against a fake provider speaking the
// OpenAI chat-completions or the Anthropic messages wire format, with
// scripted answers.

// llmReply is one scripted HTTP answer of the fake provider.
type llmReply = llmtest.Reply

// requestBodies returns the bodies the fake provider was sent, in order.
func requestBodies(f *llmtest.Server) []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, string(r.Body))
	}
	return out
}

// wire is what differs between the two provider formats.
type wire struct {
	provider string
	path     string
	baseURL  func(srv string) string
	ok       func(text string, in, out int) llmReply
	fail     func(status int) llmReply
}

var (
	openaiWire = wire{
		provider: llm.ProviderOpenAI, path: llmtest.OpenAIPath,
		baseURL: func(u string) string { return u + "/v1/" },
		ok:      llmtest.OpenAI,
		fail: func(status int) llmReply {
			return llmtest.OpenAIError(status, "server_error", http.StatusText(status))
		},
	}
	anthropicWire = wire{
		provider: llm.ProviderAnthropic, path: llmtest.AnthropicPath,
		baseURL: func(u string) string { return u },
		ok:      func(text string, in, out int) llmReply { return llmtest.Anthropic(text, in, out, "") },
		fail: func(status int) llmReply {
			return llmtest.AnthropicError(status, "api_error", http.StatusText(status))
		},
	}
)

// llmPolicy is a complete policy within exp1's constraints with the given
// fraction; paymentTree replaces the plain Release tree when not empty.
func llmPolicy(fraction float64, paymentTree string) string {
	if paymentTree == "" {
		paymentTree = `{"type":"action","node_id":"release","action":"Release","parameters":{}}`
	}
	return fmt.Sprintf(`{"version":"2.0","policy_id":"llm","description":"scripted",`+
		`"parameters":{"initial_liquidity_fraction":%g},"payment_tree":%s,`+
		`"bank_tree":{"type":"action","node_id":"bank_noop","action":"NoAction","parameters":{}}}`, fraction, paymentTree)
}

// Token counts every scripted good answer reports.
const (
	scriptPromptTokens     = 321
	scriptCompletionTokens = 54
)

// llmRun is what one case produced.
type llmRun struct {
	out      *Outcome
	records  []schema.Record
	requests []string
}

func (r *llmRun) events(typ string) []map[string]any {
	var out []map[string]any
	for _, rec := range r.records {
		e, ok := rec.(*schema.Event)
		if !ok || e.EventType != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			panic(fmt.Sprintf("event %s data %s: %v", typ, e.Data, err))
		}
		m["_iteration"] = float64(e.Iteration)
		out = append(out, m)
	}
	return out
}

func (r *llmRun) evaluations(agent string) []*schema.PolicyEvaluation {
	var out []*schema.PolicyEvaluation
	for _, rec := range r.records {
		if e, ok := rec.(*schema.PolicyEvaluation); ok && e.Agent == agent {
			out = append(out, e)
		}
	}
	return out
}

func (r *llmRun) iteration(i int) *schema.Iteration {
	for _, rec := range r.records {
		if it, ok := rec.(*schema.Iteration); ok && it.Iteration == i {
			return it
		}
	}
	return nil
}

// promptText is every string of a request body joined, JSON escapes undone.
func promptText(t *testing.T, body string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, body)
	}
	var parts []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			parts = append(parts, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return strings.Join(parts, "\n")
}

var managesRE = regexp.MustCompile(`You manage bank (\S+?)\.? Iteration`)

// runLLM runs exp1 (BANK_A and BANK_B, deterministic) with model
// <provider>:test-model against a fake provider.
func runLLM(t *testing.T, w wire, replies []llmReply, iterations int, timeout time.Duration) *llmRun {
	t.Helper()
	f := llmtest.New(t, w.path, replies...)
	r := loadExperiment(t, filepath.Join(repoRoot(t), "testdata/experiments/exp1.yaml"))
	if err := r.Config.ApplyOverrides(Overrides{Model: w.provider + ":test-model", MaxIterations: iterations}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	client, err := llm.New(llm.Config{
		Provider: r.Config.LLM.Provider, Model: r.Config.LLM.ModelName, BaseURL: w.baseURL(f.URL),
		APIKey: "test-key", Timeout: timeout, MaxTransportRetries: 2,
		Backoff: func(int) time.Duration { return time.Millisecond }, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Optimizer = llmopt.New(client, llmopt.Config{Model: r.Config.LLM.Model, Temperature: r.Config.LLM.Temperature, Logger: quiet})
	r.Logger = quiet
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	run := &llmRun{out: out, records: r.Sink.(*Memory).Records, requests: requestBodies(f)}

	// Every case: the run completes.
	last, ok := run.records[len(run.records)-1].(*schema.ExperimentCompleted)
	if !ok {
		t.Fatalf("last record is %T, want *schema.ExperimentCompleted", run.records[len(run.records)-1])
	}
	if last.Status != schema.StatusCompleted || last.NumIterations != iterations {
		t.Fatalf("completion: status %q after %d iterations (reason %q), want completed after %d", last.Status, last.NumIterations, last.ConvergenceReason, iterations)
	}
	// Every case: an agent's prompt never names the other agent, neither on
	// the wire nor in the recorded interaction.
	other := map[string]string{"BANK_A": "BANK_B", "BANK_B": "BANK_A"}
	if len(run.requests) == 0 {
		t.Fatal("the provider was never called")
	}
	for k, body := range run.requests {
		text := promptText(t, body)
		m := managesRE.FindStringSubmatch(text)
		if m == nil || other[m[1]] == "" {
			t.Fatalf("request %d names no agent it is for:\n%s", k, text)
		}
		if strings.Contains(body, other[m[1]]) {
			t.Errorf("request %d for %s contains %s", k, m[1], other[m[1]])
		}
	}
	for _, ev := range run.events("llm_interaction") {
		agent, _ := ev["agent"].(string)
		for _, key := range []string{"system_prompt", "user_prompt"} {
			p, _ := ev[key].(string)
			if p == "" || other[agent] == "" || strings.Contains(p, other[agent]) {
				t.Errorf("llm_interaction of %q: %s is empty or names the other agent", agent, key)
			}
		}
	}
	return run
}

// requestsFor returns the request bodies made for agent, in order.
func (r *llmRun) requestsFor(t *testing.T, agent string) []string {
	var out []string
	for _, body := range r.requests {
		if m := managesRE.FindStringSubmatch(promptText(t, body)); m != nil && m[1] == agent {
			out = append(out, promptText(t, body))
		}
	}
	return out
}

func num(v any) float64 { f, _ := v.(float64); return f }

// checkGoodAnswers asserts that every agent's iteration-1 proposal was parsed,
// evaluated on the engine and accepted exactly when it lowered the cost,
// with real token counts and a latency recorded.
func checkGoodAnswers(t *testing.T, run *llmRun) {
	t.Helper()
	inter := run.events("llm_interaction")
	if len(inter) == 0 {
		t.Fatal("no llm_interaction event")
	}
	for _, ev := range inter {
		if num(ev["prompt_tokens"]) != scriptPromptTokens || num(ev["completion_tokens"]) != scriptCompletionTokens {
			t.Errorf("llm_interaction tokens %v/%v, want %d/%d from the API's usage", ev["prompt_tokens"], ev["completion_tokens"], scriptPromptTokens, scriptCompletionTokens)
		}
		if num(ev["latency_seconds"]) <= 0 {
			t.Errorf("llm_interaction latency %v, want > 0", ev["latency_seconds"])
		}
		if ev["parse_error"] != "" && ev["parse_error"] != nil {
			t.Errorf("parse error %v on a good answer", ev["parse_error"])
		}
		if ev["parsed_policy"] == nil || ev["model"] == "" || ev["raw_response"] == "" {
			t.Errorf("llm_interaction lacks parsed policy, model or raw response: %v", ev)
		}
	}
	stats := run.events("llm_stats")
	if len(stats) != 1 || int(num(stats[0]["calls"])) != len(inter) ||
		int(num(stats[0]["prompt_tokens"])) != len(inter)*scriptPromptTokens ||
		int(num(stats[0]["completion_tokens"])) != len(inter)*scriptCompletionTokens {
		t.Errorf("llm_stats %v, want %d calls with %d/%d tokens each", stats, len(inter), scriptPromptTokens, scriptCompletionTokens)
	}
	decided := map[string]bool{}
	for _, typ := range []string{"policy_accepted", "policy_rejected"} {
		for _, ev := range run.events(typ) {
			if ev["_iteration"] == 1.0 {
				decided[ev["agent"].(string)+":"+typ] = true
			}
		}
	}
	for _, agent := range []string{"BANK_A", "BANK_B"} {
		evs := run.evaluations(agent)
		if len(evs) == 0 || evs[0].Iteration != 1 {
			t.Fatalf("%s: no policy evaluation in iteration 1", agent)
		}
		e := evs[0]
		if e.NumSamples != 1 || e.Delta != e.OldCost-e.NewCost || e.Accepted != (e.Delta > 0) {
			t.Errorf("%s: evaluation samples %d old %d new %d delta %d accepted %v; want one paired sample, accepted iff delta > 0",
				agent, e.NumSamples, e.OldCost, e.NewCost, e.Delta, e.Accepted)
		}
		typ := "policy_rejected"
		if e.Accepted {
			typ = "policy_accepted"
		}
		if !decided[agent+":"+typ] {
			t.Errorf("%s: no %s event in iteration 1", agent, typ)
		}
	}
	if len(run.events("llm_error")) != 0 {
		t.Errorf("llm_error events on good answers: %v", run.events("llm_error"))
	}
}

// invalidHeader opens the part of a retry prompt that lists the errors.
const invalidHeader = "Your previous answer was invalid"

// checkInvalid asserts that every agent's iteration-1 proposal was retried
// max_retries (3) times, each retry carrying the previous errors, and then
// rejected with reasons containing want.
func checkInvalid(t *testing.T, run *llmRun, want ...string) {
	t.Helper()
	for _, agent := range []string{"BANK_A", "BANK_B"} {
		reqs := run.requestsFor(t, agent)
		if len(reqs) != 3 {
			t.Fatalf("%s: %d requests, want 3 (max_retries)", agent, len(reqs))
		}
		var inter []map[string]any
		for _, ev := range run.events("llm_interaction") {
			if ev["agent"] == agent {
				inter = append(inter, ev)
			}
		}
		if len(inter) != 3 {
			t.Fatalf("%s: %d llm_interaction events, want 3", agent, len(inter))
		}
		if strings.Contains(reqs[0], invalidHeader) {
			t.Errorf("%s: the first request already reports errors", agent)
		}
		for k := 1; k < 3; k++ {
			_, errText, ok := strings.Cut(reqs[k], invalidHeader)
			if !ok {
				t.Errorf("%s: request %d does not report the previous errors:\n%s", agent, k+1, reqs[k])
				continue
			}
			if pe, _ := inter[k-1]["parse_error"].(string); pe != "" && !strings.Contains(errText, pe) {
				t.Errorf("%s: request %d lacks the parse error %q of attempt %d:\n%s", agent, k+1, pe, k, errText)
			}
			for _, w := range want {
				if !strings.Contains(errText, w) {
					t.Errorf("%s: errors reported in request %d lack %q:\n%s", agent, k+1, w, errText)
				}
			}
		}
		var rejected map[string]any
		for _, ev := range run.events("policy_rejected") {
			if ev["agent"] == agent {
				rejected = ev
			}
		}
		if rejected == nil {
			t.Fatalf("%s: no policy_rejected event", agent)
		}
		reason, _ := rejected["reason"].(string)
		errs, _ := rejected["errors"].([]any)
		if len(errs) == 0 || !strings.HasPrefix(reason, "invalid proposal") {
			t.Errorf("%s: policy_rejected %v, want an invalid-proposal reason and errors", agent, rejected)
		}
		t.Logf("%s rejected: %s", agent, reason)
		for _, w := range want {
			if !strings.Contains(reason, w) {
				t.Errorf("%s: rejection reason %q does not name %q", agent, reason, w)
			}
		}
		evs := run.evaluations(agent)
		if len(evs) != 1 || evs[0].Accepted || !strings.HasPrefix(evs[0].Reason, "invalid proposal") {
			t.Errorf("%s: policy evaluations %+v, want one rejected as invalid", agent, evs)
		}
		if got := run.out.FinalParams[agent]["initial_liquidity_fraction"]; got != 0.5 {
			t.Errorf("%s: final fraction %v, want the starting 0.5 kept", agent, got)
		}
	}
	if len(run.events("llm_error")) != 0 {
		t.Errorf("llm_error events for answers that arrived: %v", run.events("llm_error"))
	}
}

func TestLoopWithLLMOptimizer(t *testing.T) {
	good := llmPolicy(0.2, "")
	cases := []struct {
		name       string
		wire       wire
		replies    func(w wire) []llmReply
		iterations int
		timeout    time.Duration
		check      func(t *testing.T, run *llmRun)
	}{
		{
			name: "good policy (OpenAI)", wire: openaiWire, iterations: 2,
			replies: func(w wire) []llmReply {
				return []llmReply{w.ok("Here is my proposal.\n"+good, scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) {
				checkGoodAnswers(t, run)
				for _, body := range run.requests {
					var req struct{ Model string }
					_ = json.Unmarshal([]byte(body), &req)
					if req.Model != "test-model" {
						t.Errorf("request model %q, want test-model (provider prefix stripped)", req.Model)
					}
				}
				// Iteration 2's prompt carries the agent's own history.
				for _, agent := range []string{"BANK_A", "BANK_B"} {
					reqs := run.requestsFor(t, agent)
					if len(reqs) != 2 || !strings.Contains(reqs[1], "iteration 1: ") {
						t.Errorf("%s: %d requests; the second should show iteration 1 in the history", agent, len(reqs))
					}
				}
			},
		},
		{
			name: "good policy (Anthropic)", wire: anthropicWire, iterations: 2,
			replies: func(w wire) []llmReply {
				return []llmReply{w.ok(good, scriptPromptTokens, scriptCompletionTokens)}
			},
			check: checkGoodAnswers,
		},
		{
			name: "fenced json answer", wire: openaiWire, iterations: 1,
			replies: func(w wire) []llmReply {
				return []llmReply{w.ok("I lower the allocation; {this is prose}.\n```json\n"+llmPolicy(0.1, "")+"\n```\nDone.", scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) {
				checkGoodAnswers(t, run)
				for _, ev := range run.events("llm_interaction") {
					var p struct {
						Parameters map[string]float64 `json:"parameters"`
					}
					b, _ := json.Marshal(ev["parsed_policy"])
					if err := json.Unmarshal(b, &p); err != nil || p.Parameters["initial_liquidity_fraction"] != 0.1 {
						t.Errorf("parsed policy %s, want the fenced one with fraction 0.1", b)
					}
				}
			},
		},
		{
			name: "malformed json retried then rejected", wire: openaiWire, iterations: 1,
			replies: func(w wire) []llmReply {
				return []llmReply{w.ok(`{"version":"2.0","parameters":{"initial_liquidity_fraction":0.2}`, scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) {
				for _, ev := range run.events("llm_interaction") {
					if pe, _ := ev["parse_error"].(string); pe == "" {
						t.Errorf("attempt %v of %v: no parse error recorded for malformed JSON", ev["attempt"], ev["agent"])
					}
				}
				checkInvalid(t, run, "holds no policy JSON")
			},
		},
		{
			name: "parameter out of bounds", wire: openaiWire, iterations: 1,
			replies: func(w wire) []llmReply {
				return []llmReply{w.ok(llmPolicy(1.5, ""), scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) { checkInvalid(t, run, "initial_liquidity_fraction", "1.5") },
		},
		{
			name: "field not allowed", wire: openaiWire, iterations: 1,
			replies: func(w wire) []llmReply {
				tree := `{"type":"condition","node_id":"big","condition":{"op":">","left":{"field":"amount"},"right":{"value":10000}},` +
					`"on_true":{"type":"action","node_id":"hold","action":"Hold","parameters":{}},` +
					`"on_false":{"type":"action","node_id":"release","action":"Release","parameters":{}}}`
				return []llmReply{w.ok(llmPolicy(0.2, tree), scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) { checkInvalid(t, run, `"amount"`, "not allowed") },
		},
		{
			name: "429 then success", wire: openaiWire, iterations: 1,
			replies: func(w wire) []llmReply {
				busy := w.fail(http.StatusTooManyRequests)
				busy.Header = map[string]string{"Retry-After-Ms": "1"}
				return []llmReply{busy, w.ok(good, scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) {
				checkGoodAnswers(t, run)
				inter := run.events("llm_interaction")
				if got := num(inter[0]["transport_retries"]); got != 1 {
					t.Errorf("first interaction transport_retries %v, want 1 (the 429)", got)
				}
				if got := num(inter[len(inter)-1]["transport_retries"]); got != 0 {
					t.Errorf("last interaction transport_retries %v, want 0", got)
				}
			},
		},
		{
			name: "500 three times", wire: openaiWire, iterations: 2,
			replies: func(w wire) []llmReply {
				down := w.fail(http.StatusInternalServerError)
				return []llmReply{down, down, down, w.ok(good, scriptPromptTokens, scriptCompletionTokens)}
			},
			check: func(t *testing.T, run *llmRun) {
				errs := run.events("llm_error")
				if len(errs) != 1 || errs[0]["agent"] != "BANK_A" || errs[0]["_iteration"] != 1.0 {
					t.Fatalf("llm_error events %v, want one for BANK_A in iteration 1", errs)
				}
				if msg, _ := errs[0]["error"].(string); !strings.Contains(msg, "500") && !strings.Contains(msg, "unavailable") {
					t.Errorf("llm_error message %q names neither the status nor unavailability", msg)
				}
				if it := run.iteration(1); it == nil || it.AcceptedChanges["BANK_A"] {
					t.Fatalf("iteration 1 record %+v: want no accepted change for BANK_A", it)
				}
				it := run.iteration(2)
				if it == nil {
					t.Fatal("no iteration 2 record")
				}
				var pols map[string]struct {
					Parameters map[string]float64 `json:"parameters"`
				}
				if err := json.Unmarshal(it.Policies, &pols); err != nil {
					t.Fatal(err)
				}
				if got := pols["BANK_A"].Parameters["initial_liquidity_fraction"]; got != 0.5 {
					t.Errorf("BANK_A entered iteration 2 with fraction %v, want the old 0.5", got)
				}
				// The provider recovered: BANK_B in iteration 1 and both
				// agents in iteration 2 got answers.
				if n := len(run.events("llm_interaction")); n != 3 {
					t.Errorf("%d llm_interaction events, want 3 after the recovery", n)
				}
				if got := len(run.requests); got != 6 {
					t.Errorf("%d HTTP requests, want 3 failed + 3 answered", got)
				}
			},
		},
		{
			name: "timeout", wire: openaiWire, iterations: 1, timeout: 50 * time.Millisecond,
			replies: func(w wire) []llmReply { return []llmReply{{Block: true}} },
			check: func(t *testing.T, run *llmRun) {
				errs := run.events("llm_error")
				if len(errs) != 2 {
					t.Fatalf("llm_error events %v, want one per agent", errs)
				}
				for _, e := range errs {
					msg, _ := e["error"].(string)
					if !strings.Contains(msg, "unavailable") || !strings.Contains(strings.ToLower(msg), "deadline") && !strings.Contains(strings.ToLower(msg), "timeout") {
						t.Errorf("llm_error %q: want an unavailable provider after timeouts", msg)
					}
				}
				if got := len(run.requests); got != 6 {
					t.Errorf("%d HTTP requests, want 3 attempts per agent", got)
				}
				if n := len(run.events("llm_interaction")); n != 0 {
					t.Errorf("%d llm_interaction events, want none", n)
				}
				for _, agent := range []string{"BANK_A", "BANK_B"} {
					if got := run.out.FinalParams[agent]["initial_liquidity_fraction"]; got != 0.5 {
						t.Errorf("%s: final fraction %v, want the starting 0.5 kept", agent, got)
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			run := runLLM(t, tc.wire, tc.replies(tc.wire), tc.iterations, timeout)
			tc.check(t, run)
		})
	}
}
