package experiment

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"simcash/money"
	"simcash/optimizer"
	"simcash/policy"
	"simcash/schema"
	"simcash/sim"
)

// Sink receives every record the loop produces, in order. The bus's
// publisher implements it; tests use Memory.
type Sink interface {
	Publish(ctx context.Context, r schema.Record) error
}

// Progress is what the loop reports to a person watching (runner run).
type Progress struct {
	Iteration  int
	Total      int
	Cost       int64            // iteration cost, cents
	AgentCosts map[string]int64 // cents
	Agent      string           // set for a per-agent decision
	Accepted   bool
	Reason     string
	Params     map[string]float64 // in force after the decision
	// Proposed is the rejected proposal's parameters, when it had any.
	Proposed map[string]float64
}

// Runner runs one experiment.
type Runner struct {
	Config    *Config
	Scenario  *sim.Config
	Optimizer optimizer.Optimizer
	Sink      Sink
	// Progress, when set, is called after each evaluation and iteration.
	Progress func(Progress)
	Logger   *slog.Logger
	// Now and ID are for tests; defaults are time.Now and a new id.
	Now     func() time.Time
	ID      string
	Version string
	// Commit is the program's VCS revision, recorded with the experiment.
	Commit string
	// SweepID is the sweep the run belongs to, if any.
	SweepID string
	// OpenOnCancel leaves a cancelled run without a completion record, to be
	// resumed by someone else (a sweep worker shutting down), instead of
	// recording it as interrupted.
	OpenOnCancel bool
	// Resume, when set, continues the stored run it describes instead of
	// starting one: same id, state rebuilt from its records.
	Resume *Checkpoint
	// ModelCalls bounds the optimizer calls in flight at once: the agents of
	// an iteration are asked concurrently (their prompts hold only their own
	// state), then evaluated and decided in order, so the records equal a
	// sequential run's. 0 or 1 asks one agent at a time.
	ModelCalls int
	// HeartbeatEvery, when positive, publishes a heartbeat record at this
	// interval while the experiment runs, so a run whose process died is
	// recognised as lost even in the middle of a long model call.
	HeartbeatEvery time.Duration
}

// Outcome is the result of a run.
type Outcome struct {
	ExperimentID  string
	Status        string
	Iterations    int
	Converged     bool
	Reason        string
	FinalCost     int64
	BestCost      int64
	AgentCosts    map[string]int64
	FinalPolicies map[string]json.RawMessage
	FinalParams   map[string]map[string]float64
}

// NewID returns an experiment id: {name}-{YYYYMMDD}-{HHMMSS}-{6 hex}, with
// the name reduced to characters that are safe in a subject token.
func NewID(name string, now time.Time) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var x [3]byte
	_, _ = rand.Read(x[:])
	return fmt.Sprintf("%s-%s-%s", b.String(), now.UTC().Format("20060102-150405"), hex.EncodeToString(x[:]))
}

// DefaultPolicyJSON is SimCash's starting policy: initial_liquidity_fraction
// 0.5, a payment tree that releases everything and, when allowed, a bank
// tree doing nothing.
func DefaultPolicyJSON(withBankTree bool) []byte {
	bank := ""
	if withBankTree {
		bank = `,"bank_tree":{"type":"action","node_id":"bank_noop","action":"NoAction","parameters":{}}`
	}
	return []byte(`{"version":"2.0","policy_id":"default","description":"release everything; allocate half the pool",` +
		`"parameters":{"initial_liquidity_fraction":0.5},` +
		`"payment_tree":{"type":"action","node_id":"release","action":"Release","parameters":{}}` + bank + `}`)
}

type loop struct {
	*Runner
	ctx      context.Context
	id       string
	seq      int64
	eval     *evaluator
	opts     policy.Options
	current  map[string]*policy.Policy
	history  map[string][]optimizer.HistoryEntry
	detector Detector
	start    time.Time
	best     int64
	iters    int
	tokens   [2]int
	llmCalls int
	// inProgress is the iteration in progress, for heartbeats.
	inProgress atomic.Int64
	// beat is the last heartbeat number published.
	beat int64
}

// Run executes the experiment and publishes every record to the sink. When
// ctx is cancelled the run stops at the next step and is recorded as
// interrupted. A failed publish is an error: records are never dropped.
func (r *Runner) Run(ctx context.Context) (*Outcome, error) {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	l := &loop{Runner: r, ctx: ctx, start: r.Now(), best: -1}
	l.id = r.ID
	if r.Resume != nil {
		l.id, l.start = r.Resume.ID, r.Resume.StartedAt
		// Heartbeat numbers must not repeat the first process's.
		l.beat = r.Now().UnixMilli()
	}
	if l.id == "" {
		l.id = NewID(r.Config.Name, l.start)
	}
	if err := l.init(); err != nil {
		return nil, err
	}
	from, converged, reason := 1, false, ""
	if r.Resume != nil {
		k, conv, why, err := l.restore(r.Resume)
		if err != nil {
			return nil, err
		}
		from, converged, reason = k+1, conv, why
	}
	stopBeats := l.heartbeats()
	out, runErr := l.run(from, converged, reason)
	stopBeats()
	status := schema.StatusCompleted
	switch {
	case runErr != nil && ctx.Err() != nil:
		status = schema.StatusInterrupted
		out.Reason = "interrupted"
	case runErr != nil:
		status = schema.StatusFailed
		out.Reason = "error: " + runErr.Error()
	}
	out.Status = status
	if status == schema.StatusInterrupted && r.OpenOnCancel {
		return out, runErr
	}
	// The completion must reach the sink even when ctx was cancelled.
	fin, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	l.ctx = fin
	_ = l.event(l.iters, "experiment_end", map[string]any{"status": status, "reason": out.Reason})
	pols, _ := json.Marshal(out.FinalPolicies)
	err := r.Sink.Publish(fin, &schema.ExperimentCompleted{
		ExpID: l.id, CompletedAt: r.Now().UTC(), Status: status, Converged: out.Converged,
		ConvergenceReason: out.Reason, NumIterations: out.Iterations, FinalCost: out.FinalCost,
		BestCost: out.BestCost, FinalPolicies: pols, AgentFinalCosts: out.AgentCosts,
		DurationSeconds: r.Now().Sub(l.start).Seconds(),
	})
	if err != nil {
		return out, fmt.Errorf("publish completion of %s: %w", l.id, err)
	}
	if runErr != nil {
		return out, runErr
	}
	return out, nil
}

func (l *loop) init() error {
	c := l.Config
	l.eval = &evaluator{scn: l.Scenario, ticks: c.Evaluation.Ticks, samples: c.Evaluation.NumSamples}
	l.opts = constraintOptions(c)
	l.current = map[string]*policy.Policy{}
	l.history = map[string][]optimizer.HistoryEntry{}
	withBank := true
	if l.opts.Actions != nil {
		_, withBank = l.opts.Actions[policy.BankTree]
	}
	for _, a := range c.OptimizedAgents {
		doc := DefaultPolicyJSON(withBank)
		if p, ok := c.InitialPolicies[a]; ok {
			doc = p
		}
		p, err := policy.Parse(doc)
		if err != nil {
			return fmt.Errorf("initial policy of %s: %w", a, err)
		}
		l.current[a] = p
	}
	for a, raw := range c.InitialPolicies {
		if _, ok := l.current[a]; ok {
			continue
		}
		p, err := policy.Parse(raw)
		if err != nil {
			return fmt.Errorf("initial policy of %s: %w", a, err)
		}
		l.current[a] = p
	}
	l.detector = NewDetector(c.Evaluation.Mode, c.Convergence)
	return nil
}

// heartbeats publishes a heartbeat every HeartbeatEvery until the returned
// stop is called. A failed heartbeat is logged, not fatal: the records
// themselves carry the run.
func (l *loop) heartbeats() (stop func()) {
	if l.HeartbeatEvery <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(l.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			l.beat++
			hb := &schema.Heartbeat{ExpID: l.id, Beat: l.beat, Iteration: int(l.inProgress.Load()), Timestamp: l.Now().UTC()}
			if err := l.Sink.Publish(ctx, hb); err != nil && ctx.Err() == nil {
				l.Logger.Warn("heartbeat not published", "experiment", l.id, "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// constraintOptions turns policy_constraints into validation options.
func constraintOptions(c *Config) policy.Options {
	var o policy.Options
	pc := c.PolicyConstraints
	if pc == nil {
		return o
	}
	for _, p := range pc.AllowedParameters {
		spec := policy.ParamSpec{Name: p.Name, Type: policy.ParamType(p.ParamType), Min: p.MinValue, Max: p.MaxValue}
		for _, v := range p.AllowedValues {
			if f, ok := v.(float64); ok {
				spec.AllowedValues = append(spec.AllowedValues, f)
			} else if i, ok := v.(int); ok {
				spec.AllowedValues = append(spec.AllowedValues, float64(i))
			}
		}
		o.Params = append(o.Params, spec)
	}
	if len(pc.AllowedFields) > 0 {
		o.Fields = slices.Clone(pc.AllowedFields)
	}
	if len(pc.AllowedActions) > 0 {
		o.Actions = map[policy.Tree][]policy.ActionKind{}
		for tree, acts := range pc.AllowedActions {
			t, ok := policy.TreeByName(tree)
			if !ok {
				continue
			}
			for _, a := range acts {
				if k, ok := policy.ActionKindByName(a); ok {
					o.Actions[t] = append(o.Actions[t], k)
				}
			}
		}
	}
	return o
}

func (l *loop) event(iter int, typ string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	l.seq++
	return l.Sink.Publish(l.ctx, &schema.Event{ExpID: l.id, Seq: l.seq, Iteration: iter, EventType: typ, Data: b, Timestamp: l.Now().UTC()})
}

func (l *loop) policiesJSON() json.RawMessage {
	m := make(map[string]json.RawMessage, len(l.current))
	for a, p := range l.current {
		m[a] = p.JSON()
	}
	b, _ := json.Marshal(m)
	return b
}

// evaluation of the current policies at the start of an iteration.
type iterEval struct {
	seed    int64
	costs   map[string]int64      // per optimized agent (mean over samples in bootstrap)
	detail  map[string]sim.Costs  // breakdown per agent (context simulation)
	samples map[string]*sampleSet // bootstrap only
	base    map[string][]int64    // bootstrap: per-sample costs of the current policy
	summary map[string]string     // event summary per agent
	result  *sim.Result
	// changed is set once a proposal is accepted this iteration: result no
	// longer describes the policies in force.
	changed bool
}

// run runs iterations from..max_iterations (from > 1 when resuming; done
// says the restored run had converged already).
func (l *loop) run(from int, done bool, doneReason string) (*Outcome, error) {
	c := l.Config
	out := &Outcome{ExperimentID: l.id, Reason: ReasonMaxIterations}
	if from > 1 {
		if done {
			out.Converged, out.Reason = true, doneReason
		}
		return l.iterate(out, from, done)
	}
	started := &schema.ExperimentStarted{
		ExpID: l.id, Name: c.Name, Type: "generic", Config: c.ResolvedJSON(), MasterSeed: c.MasterSeed,
		Scenario: c.Scenario, Model: c.LLM.Model, StartedAt: l.start.UTC(), ProgramVersion: l.Version,
		ProgramCommit: l.Commit, SweepID: l.SweepID, Host: hostname(), ConfigHash: c.Hash(),
	}
	if err := l.Sink.Publish(l.ctx, started); err != nil {
		return out, fmt.Errorf("publish experiment start: %w", err)
	}
	if err := l.event(0, "experiment_start", map[string]any{"name": c.Name, "mode": c.Evaluation.Mode, "model": c.LLM.Model, "optimized_agents": c.OptimizedAgents, "master_seed": c.MasterSeed}); err != nil {
		return out, err
	}
	return l.iterate(out, 1, false)
}

// iterate runs iterations from..max_iterations (none when done), then
// evaluates the final policies.
func (l *loop) iterate(out *Outcome, from int, done bool) (*Outcome, error) {
	c := l.Config
	var last *iterEval
	for i := from; i <= c.Convergence.MaxIterations && !done; i++ {
		if err := l.ctx.Err(); err != nil {
			l.finish(out, last)
			return out, err
		}
		l.iters = i
		l.inProgress.Store(int64(i))
		if err := l.event(i, "iteration_start", map[string]any{"iteration": i}); err != nil {
			return out, err
		}
		ev, err := l.evaluate(i)
		if err != nil {
			l.finish(out, last)
			return out, err
		}
		last = ev
		total := sumCosts(ev.costs)
		if l.best < 0 || total < l.best {
			l.best = total
		}
		params := l.params()
		converged, reason := l.detector.Observe(total, params)
		if l.Progress != nil {
			l.Progress(Progress{Iteration: i, Total: c.Convergence.MaxIterations, Cost: total, AgentCosts: ev.costs})
		}
		accepted := map[string]bool{}
		policiesAtStart := l.policiesJSON()
		if !converged {
			props, err := l.proposeAll(i, ev)
			if err != nil {
				l.finish(out, ev)
				return out, err
			}
			for _, a := range c.OptimizedAgents {
				ok, err := l.optimizeAgent(i, a, ev, props[a])
				if err != nil {
					l.finish(out, ev)
					return out, err
				}
				accepted[a] = ok
			}
		}
		if err := l.Sink.Publish(l.ctx, &schema.Iteration{
			ExpID: l.id, Iteration: i, TotalCost: total, AgentCosts: ev.costs, Policies: policiesAtStart,
			AcceptedChanges: accepted, Timestamp: l.Now().UTC(),
		}); err != nil {
			return out, fmt.Errorf("publish iteration %d: %w", i, err)
		}
		if err := l.event(i, "iteration_metrics", map[string]any{"total_cost": total, "agent_costs": ev.costs, "best_cost": l.best, "accepted": accepted, "parameters": params}); err != nil {
			return out, err
		}
		if converged {
			out.Converged, out.Reason = true, reason
			break
		}
	}
	if l.llmCalls > 0 {
		_ = l.event(l.iters, "llm_stats", map[string]any{"calls": l.llmCalls, "prompt_tokens": l.tokens[0], "completion_tokens": l.tokens[1]})
	}
	// Final costs: the final policies evaluated on the last iteration's seed.
	final, err := l.evaluate(max(l.iters, 1))
	if err != nil {
		l.finish(out, last)
		return out, err
	}
	l.finish(out, final)
	return out, nil
}

// finish fills the outcome from the latest evaluation.
func (l *loop) finish(out *Outcome, ev *iterEval) {
	out.Iterations = l.iters
	out.FinalPolicies = map[string]json.RawMessage{}
	out.FinalParams = l.params()
	for a, p := range l.current {
		out.FinalPolicies[a] = p.JSON()
	}
	if ev != nil {
		out.AgentCosts = maps.Clone(ev.costs)
		out.FinalCost = sumCosts(ev.costs)
	}
	out.BestCost = l.best
	if out.BestCost < 0 {
		out.BestCost = out.FinalCost
	}
	if out.FinalCost < out.BestCost {
		out.BestCost = out.FinalCost
	}
}

func (l *loop) params() map[string]map[string]float64 {
	m := map[string]map[string]float64{}
	for _, a := range l.Config.OptimizedAgents {
		m[a] = l.current[a].Params()
	}
	return m
}

func sumCosts(m map[string]int64) int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

func (l *loop) seedFor(i int, agent string) int64 {
	return IterationSeed(l.Config.MasterSeed, i-1, agent)
}

func (l *loop) bootstrap() bool { return l.Config.Evaluation.Mode == "bootstrap" }

// evaluate runs the current policies: one full simulation with the first
// optimized agent's iteration seed, plus bootstrap samples in that mode.
func (l *loop) evaluate(i int) (*iterEval, error) {
	c := l.Config
	seed := l.seedFor(i, c.OptimizedAgents[0])
	s, res, err := l.eval.simulate(l.current, seed)
	if err != nil {
		return nil, err
	}
	ev := &iterEval{seed: seed, costs: map[string]int64{}, detail: map[string]sim.Costs{}, summary: map[string]string{}, result: res}
	for _, a := range c.OptimizedAgents {
		ar := res.Agent(a)
		ev.costs[a] = ar.Costs.Total()
		ev.detail[a] = ar.Costs
		ev.summary[a] = summarize(ar)
	}
	if !l.bootstrap() {
		return ev, l.event(i, "simulation_complete", map[string]any{"seed": seed, "agent_costs": ev.costs})
	}
	if err := l.event(i, "context_simulation_complete", map[string]any{"seed": seed, "agent_costs": ev.costs}); err != nil {
		return nil, err
	}
	ev.samples = map[string]*sampleSet{}
	ev.base = map[string][]int64{}
	for _, a := range c.OptimizedAgents {
		set, err := l.eval.buildSamples(s, a, l.seedFor(i, a))
		if err != nil {
			return nil, err
		}
		costs, err := l.eval.costs(set, l.current[a])
		if err != nil {
			return nil, err
		}
		ev.samples[a], ev.base[a] = set, costs
		ev.costs[a] = meanInt(costs)
		if err := l.event(i, "bootstrap_evaluation", map[string]any{"agent": a, "num_samples": len(costs), "mean_cost": ev.costs[a], "sample_costs": costs}); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// meanInt is the mean rounded half away from zero to whole cents.
func meanInt(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	var s int64
	for _, x := range xs {
		s += x
	}
	n := int64(len(xs))
	if s >= 0 {
		return (2*s + n) / (2 * n)
	}
	return -((-2*s + n) / (2 * n))
}

func summarize(ar *sim.AgentResult) string {
	c := ar.Costs
	return fmt.Sprintf("payments sent: %d, settled: %d; costs (cents): liquidity %d, delay %d, overdraft %d, collateral %d, deadline penalties %d, end-of-day penalties %d, split friction %d; final balance %d",
		ar.Arrivals, ar.Settled, c.Liquidity, c.Delay, c.Overdraft, c.Collateral, c.DeadlinePenalty, c.EODPenalty, c.SplitFriction, ar.FinalBalance)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// proposal is what asking the optimizer for one agent's policy produced:
// the events to publish, in order, and the valid candidate (nil when every
// attempt failed validation, or the optimizer was unavailable).
type proposal struct {
	events   []pendingEvent
	cand     *policy.Policy
	raw      json.RawMessage
	problems []string
	failure  error // the optimizer was unavailable
	calls    int
	tokens   [2]int
}

type pendingEvent struct {
	typ  string
	data map[string]any
}

// proposeAll asks the optimizer for every optimized agent's proposal,
// ModelCalls at a time. Nothing is published here: optimizeAgent publishes
// each agent's events in agent order, as a sequential run does.
func (l *loop) proposeAll(i int, ev *iterEval) (map[string]*proposal, error) {
	agents := l.Config.OptimizedAgents
	out := make(map[string]*proposal, len(agents))
	if l.ModelCalls <= 1 {
		for _, a := range agents {
			p, err := l.propose(i, a, ev)
			if err != nil {
				return nil, err
			}
			out[a] = p
		}
		return out, nil
	}
	props := make([]*proposal, len(agents))
	errs := make([]error, len(agents))
	sem := make(chan struct{}, l.ModelCalls)
	var wg sync.WaitGroup
	for k, a := range agents {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			props[k], errs[k] = l.propose(i, a, ev)
		})
	}
	wg.Wait()
	for k, a := range agents {
		if errs[k] != nil {
			return nil, errs[k]
		}
		out[a] = props[k]
	}
	return out, nil
}

// propose asks for agent's proposal and validates it, retrying with the
// errors up to max_retries attempts. It reads the loop's state and changes
// none, so agents can be asked concurrently.
func (l *loop) propose(i int, agent string, ev *iterEval) (*proposal, error) {
	c := l.Config
	cur := l.current[agent]
	d := ev.detail[agent]
	req := optimizer.Request{
		Agent: agent, Iteration: i, CurrentPolicy: cur.JSON(), Constraints: c.Constraints(),
		History: slices.Clone(l.history[agent]),
		Costs: optimizer.AgentCosts{Liquidity: d.Liquidity, Delay: d.Delay, Overdraft: d.Overdraft, Collateral: d.Collateral,
			DeadlinePenalty: d.DeadlinePenalty, EODPenalty: d.EODPenalty, SplitFriction: d.SplitFriction, Total: ev.costs[agent]},
		CostRates: costRates(l.Scenario), EventSummary: ev.summary[agent], Customization: c.Customization(agent),
	}
	p := &proposal{}
	attempts := max(1, c.LLM.MaxRetries)
	for attempt := 1; attempt <= attempts; attempt++ {
		req.Attempt = attempt
		req.PreviousErrors = p.problems
		prop, err := l.Optimizer.Propose(l.ctx, req)
		if err != nil {
			if l.ctx.Err() != nil {
				return nil, l.ctx.Err()
			}
			// A transport failure is not a proposal: record it, keep the
			// old policy, and leave the agent's history untouched.
			data := map[string]any{"agent": agent, "attempt": attempt, "error": err.Error()}
			if ia := prop.Interaction; ia != nil {
				data["model"], data["system_prompt"], data["user_prompt"] = ia.Model, ia.SystemPrompt, ia.UserPrompt
				data["transport_retries"] = ia.TransportRetries
			}
			p.events = append(p.events, pendingEvent{"llm_error", data})
			p.failure = err
			return p, nil
		}
		if ia := prop.Interaction; ia != nil {
			p.calls++
			p.tokens[0] += ia.PromptTokens
			p.tokens[1] += ia.CompletionTokens
			p.events = append(p.events, pendingEvent{"llm_interaction", map[string]any{
				"agent": agent, "agent_id": agent, "attempt": attempt, "model": ia.Model, "system_prompt": ia.SystemPrompt,
				"user_prompt": ia.UserPrompt, "raw_response": ia.RawResponse, "parsed_policy": ia.ParsedPolicy,
				"parse_error": ia.ParseError, "prompt_tokens": ia.PromptTokens, "completion_tokens": ia.CompletionTokens,
				"latency_seconds": ia.LatencySeconds, "transport_retries": ia.TransportRetries,
			}})
		} else {
			p.events = append(p.events, pendingEvent{"policy_proposal", map[string]any{"agent": agent, "attempt": attempt, "policy": prop.Policy}})
		}
		p.raw = prop.Policy
		if prop.ParseError != "" || len(p.raw) == 0 {
			p.problems = []string{"the answer holds no policy JSON: " + prop.ParseError}
			continue
		}
		pol, err := policy.ParseWith(p.raw, l.opts)
		if err != nil {
			p.problems = validationProblems(err)
			continue
		}
		p.cand, p.problems = pol, nil
		break
	}
	return p, nil
}

// optimizeAgent publishes agent's proposal events, then evaluates the
// candidate against the current policy on the same seed or samples, and
// accepts or rejects it.
func (l *loop) optimizeAgent(i int, agent string, ev *iterEval, p *proposal) (bool, error) {
	cur := l.current[agent]
	l.llmCalls += p.calls
	l.tokens[0] += p.tokens[0]
	l.tokens[1] += p.tokens[1]
	for _, e := range p.events {
		if err := l.event(i, e.typ, e.data); err != nil {
			return false, err
		}
	}
	if p.failure != nil {
		reason := "optimizer unavailable: " + p.failure.Error()
		l.report(i, agent, false, reason, nil)
		return false, l.publishEval(&schema.PolicyEvaluation{Iteration: i, Agent: agent, OldCost: ev.costs[agent],
			NewCost: ev.costs[agent], Reason: reason, ReasonCode: schema.ReasonOptimizerError, Seed: ev.seed})
	}
	cand, raw, problems := p.cand, p.raw, p.problems
	if cand == nil {
		reason := "invalid proposal: " + strings.Join(problems, "; ")
		if e := l.event(i, "policy_rejected", map[string]any{"agent": agent, "reason": reason, "errors": problems}); e != nil {
			return false, e
		}
		l.history[agent] = append(l.history[agent], optimizer.HistoryEntry{Iteration: i, Policy: raw, OldCost: ev.costs[agent], NewCost: ev.costs[agent], Reason: reason})
		l.report(i, agent, false, reason, nil)
		return false, l.publishEval(&schema.PolicyEvaluation{Iteration: i, Agent: agent, ProposedPolicy: raw,
			OldCost: ev.costs[agent], NewCost: ev.costs[agent], Reason: reason, ReasonCode: schema.ReasonInvalidProposal, Seed: ev.seed})
	}
	if bytes.Equal(cand.JSON(), cur.JSON()) {
		reason := "unchanged: the proposal equals the current policy"
		l.report(i, agent, false, reason, nil)
		return false, l.publishEval(&schema.PolicyEvaluation{Iteration: i, Agent: agent, ProposedPolicy: cand.JSON(),
			OldCost: ev.costs[agent], NewCost: ev.costs[agent], Reason: reason, ReasonCode: schema.ReasonUnchanged, Seed: ev.seed})
	}
	oldCosts, newCosts, seeds, err := l.paired(i, agent, cand, ev)
	if err != nil {
		return false, err
	}
	accepted, code, reason := l.accept(oldCosts, newCosts)
	oldMean, newMean := meanInt(oldCosts), meanInt(newCosts)
	details := make([]map[string]int64, len(oldCosts))
	for k := range oldCosts {
		details[k] = map[string]int64{"seed": seeds[k], "old_cost": oldCosts[k], "new_cost": newCosts[k], "delta": oldCosts[k] - newCosts[k]}
	}
	sd, _ := json.Marshal(details)
	rec := &schema.PolicyEvaluation{Iteration: i, Agent: agent, ProposedPolicy: cand.JSON(), OldCost: oldMean,
		NewCost: newMean, Accepted: accepted, Reason: reason, ReasonCode: code, NumSamples: len(oldCosts),
		SampleDetails: sd, Seed: l.seedFor(i, agent)}
	pairedStats(rec, oldCosts, newCosts)
	if err := l.publishEval(rec); err != nil {
		return false, err
	}
	l.history[agent] = append(l.history[agent], optimizer.HistoryEntry{Iteration: i, Policy: cand.JSON(), Params: cand.Params(), OldCost: oldMean, NewCost: newMean, Accepted: accepted, Reason: reason})
	typ := "policy_rejected"
	if accepted {
		typ = "policy_accepted"
		l.current[agent] = cand
		ev.changed = true
	}
	if err := l.event(i, typ, map[string]any{"agent": agent, "old_cost": oldMean, "new_cost": newMean, "reason": reason, "parameters": cand.Params()}); err != nil {
		return false, err
	}
	l.report(i, agent, accepted, reason, cand.Params())
	return accepted, nil
}

func (l *loop) report(i int, agent string, accepted bool, reason string, proposed map[string]float64) {
	if l.Progress != nil {
		if accepted {
			proposed = nil
		}
		l.Progress(Progress{Iteration: i, Total: l.Config.Convergence.MaxIterations, Agent: agent, Accepted: accepted,
			Reason: reason, Params: l.current[agent].Params(), Proposed: proposed})
	}
}

func validationProblems(err error) []string {
	var ve *policy.ValidationError
	if errors.As(err, &ve) {
		var out []string
		for _, p := range ve.Problems {
			out = append(out, p.String())
		}
		if len(out) > 0 {
			return out
		}
	}
	return []string{err.Error()}
}

// publishEval completes r (experiment, delta, mode, time) and publishes it.
func (l *loop) publishEval(r *schema.PolicyEvaluation) error {
	if len(r.ProposedPolicy) == 0 || !json.Valid(r.ProposedPolicy) {
		r.ProposedPolicy, _ = json.Marshal(map[string]string{"invalid": string(r.ProposedPolicy)})
	}
	if len(r.SampleDetails) == 0 {
		r.SampleDetails = json.RawMessage("null")
	}
	r.ExpID, r.Delta, r.EvaluationMode, r.Timestamp = l.id, r.OldCost-r.NewCost, l.Config.Evaluation.Mode, l.Now().UTC()
	return l.Sink.Publish(l.ctx, r)
}

// pairedStats fills r's statistics of the paired samples: the mean, standard
// deviation and 95% t interval of the deltas (old - new), and the standard
// deviation and 95% t interval of the proposal's costs, rounded to cents.
func pairedStats(r *schema.PolicyEvaluation, oldC, newC []int64) {
	if len(oldC) == 0 {
		return
	}
	deltas, costs := make([]float64, len(oldC)), make([]float64, len(newC))
	for k := range oldC {
		deltas[k], costs[k] = float64(oldC[k]-newC[k]), float64(newC[k])
	}
	cents := func(x float64) *int64 { v := int64(math.Round(x)); return &v }
	r.MeanDelta, r.DeltaStdDev, r.CostStdDev = cents(Mean(deltas)), cents(Std(deltas)), cents(Std(costs))
	if lo, hi, ok := PairedTInterval(deltas); ok {
		r.DeltaCILower, r.DeltaCIUpper = cents(lo), cents(hi)
	}
	if lo, hi, ok := PairedTInterval(costs); ok {
		r.CostCILower, r.CostCIUpper = cents(lo), cents(hi)
	}
}

// paired evaluates the current and the candidate policy of agent on the
// same seed (deterministic) or the same samples (bootstrap).
// seeds holds the seed of each pair.
func (l *loop) paired(i int, agent string, cand *policy.Policy, ev *iterEval) (oldC, newC, seeds []int64, err error) {
	if l.bootstrap() {
		set := ev.samples[agent]
		newC, err = l.eval.costs(set, cand)
		return ev.base[agent], newC, set.seeds, err
	}
	seed := l.seedFor(i, agent)
	before := ev.result
	if ev.changed || seed != ev.seed {
		// The iteration's own run no longer matches: simulate the
		// current policies on this agent's seed.
		if _, before, err = l.eval.simulate(l.current, seed); err != nil {
			return nil, nil, nil, err
		}
	}
	trial := maps.Clone(l.current)
	trial[agent] = cand
	_, after, err := l.eval.simulate(trial, seed)
	if err != nil {
		return nil, nil, nil, err
	}
	return []int64{before.Agent(agent).Costs.Total()}, []int64{after.Agent(agent).Costs.Total()}, []int64{seed}, nil
}

// accept applies the spec's acceptance rules to paired costs and says why,
// as a reason code and a text for people (money in dollars).
func (l *loop) accept(oldC, newC []int64) (bool, string, string) {
	c := l.Config
	if c.Evaluation.Mode == "deterministic-temporal" {
		return true, schema.ReasonTemporal, "temporal mode accepts every valid proposal"
	}
	deltas := make([]float64, len(oldC))
	var sum int64
	for k := range oldC {
		d := oldC[k] - newC[k]
		sum += d
		deltas[k] = float64(d)
	}
	if sum <= 0 {
		return false, schema.ReasonNoImprovement, "no improvement: total delta " + money.Dollars(sum)
	}
	if c.Evaluation.Acceptance.RequireStatisticalSignificance {
		lo, hi, ok := PairedTInterval(deltas)
		if !ok || lo <= 0 {
			return false, schema.ReasonNotSignificant, fmt.Sprintf("not significant: 95%% CI of the mean delta [%s, %s] includes 0", money.DollarsF(lo), money.DollarsF(hi))
		}
	}
	if m := c.Evaluation.Acceptance.MaxCoefficientOfVariation; m != nil {
		xs := make([]float64, len(newC))
		for k, v := range newC {
			xs[k] = float64(v)
		}
		if cv := CV(xs); cv > *m {
			return false, schema.ReasonTooVariable, fmt.Sprintf("too variable: CV %.4f above %.4f", cv, *m)
		}
	}
	return true, schema.ReasonImproved, "improvement: total delta " + money.Dollars(sum)
}

func costRates(s *sim.Config) map[string]float64 {
	c := s.Costs
	return map[string]float64{
		"liquidity_cost_per_tick_bps":  c.LiquidityCostPerTickBps,
		"delay_cost_per_tick_per_cent": c.DelayCostPerTickPerCent,
		"overdraft_bps_per_tick":       c.OverdraftBpsPerTick,
		"collateral_cost_per_tick_bps": c.CollateralCostPerTickBps,
		"overdue_delay_multiplier":     c.OverdueDelayMultiplier,
		"deadline_penalty":             float64(c.DeadlinePenalty.Amount),
		"eod_penalty_per_transaction":  float64(c.EODPenaltyPerTransaction.Amount),
		"split_friction_cost":          float64(c.SplitFrictionCost),
	}
}
