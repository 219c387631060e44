package experiment

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"simcash/policy"
	"simcash/sim"
)

// evaluator runs the settlement engine for the loop: full simulations in
// the deterministic modes, three-party sandbox samples in bootstrap mode.
type evaluator struct {
	scn     *sim.Config
	ticks   int // evaluation.ticks
	samples int
	// workers evaluates bootstrap samples in parallel; 0 means GOMAXPROCS.
	// Each sample is its own simulation, so results do not depend on it.
	workers int
}

// simulate runs the full scenario with the given policies and seed.
func (e *evaluator) simulate(pols map[string]*policy.Policy, seed int64) (*sim.Sim, *sim.Result, error) {
	cfg := *e.scn
	cfg.Agents = slices.Clone(e.scn.Agents)
	for i := range cfg.Agents {
		if p, ok := pols[cfg.Agents[i].ID]; ok {
			cfg.Agents[i].UsePolicy(p)
		}
	}
	cfg.Seed = uint64(seed)
	opts := []sim.Option{}
	if e.ticks > 0 && e.ticks < cfg.TicksPerDay*cfg.NumDays {
		opts = append(opts, sim.WithTicks(e.ticks))
	}
	s, err := sim.New(&cfg, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("simulate: %w", err)
	}
	return s, s.Run(), nil
}

// payment is one historical payment as the bootstrap resamples it.
type payment struct {
	amount    int64
	offset    int // deadline - arrival
	priority  int
	divisible bool
}

// sampleSet is one agent's bootstrap samples: sandbox configs sharing the
// agent's settings, differing in their payment events.
type sampleSet struct {
	agent   string
	configs []*sim.Config
	seeds   []int64
}

const (
	sandboxSource = "SOURCE"
	sandboxSink   = "SINK"
)

// buildSamples resamples an agent's history from the context simulation:
// its outgoing payments and its settled incoming payments, drawn with
// replacement (same counts), each at a uniform new arrival tick in
// [0, ticks), deadline offsets kept and capped at the end of the day.
// Resampling draws from the engine's xorshift generator seeded with the
// sample seed: first the outgoing draws (index, then tick), then incoming.
func (e *evaluator) buildSamples(ctxSim *sim.Sim, agentID string, seed int64) (*sampleSet, error) {
	ai, ok := ctxSim.AgentIndex(agentID)
	if !ok {
		return nil, fmt.Errorf("bootstrap: unknown agent %q", agentID)
	}
	var out, in []payment
	for _, tx := range ctxSim.Transactions() {
		if tx.Parent >= 0 {
			continue
		}
		p := payment{amount: tx.Amount, offset: int(tx.Deadline - tx.Arrival), priority: int(tx.Priority), divisible: tx.Divisible}
		switch {
		case tx.Sender == ai:
			out = append(out, p)
		case tx.Receiver == ai && tx.Status == sim.TxSettled:
			in = append(in, p)
		}
	}
	var base *sim.AgentConfig
	for i := range e.scn.Agents {
		if e.scn.Agents[i].ID == agentID {
			base = &e.scn.Agents[i]
		}
	}
	ticks := e.ticks
	if ticks <= 0 {
		ticks = e.scn.TicksPerDay
	}
	agent := *base
	agent.BilateralLimits = nil // its counterparties are not in the sandbox
	agent.Arrivals = nil
	set := &sampleSet{agent: agentID}
	for k := 0; k < e.samples; k++ {
		sseed := SampleSeed(seed, k)
		rng := sim.NewRNG(uint64(sseed))
		var events []sim.Event
		draw := func(from, to string, pool []payment) {
			for range pool {
				p := pool[rng.Range(0, int64(len(pool)))]
				t := int(rng.Range(0, int64(ticks)))
				dl := max(1, min(p.offset, ticks-t))
				events = append(events, sim.Event{
					Kind: sim.CustomTransactionArrival, Tick: t, FromAgent: from, ToAgent: to,
					Amount: p.amount, Priority: p.priority, Deadline: &dl, Divisible: p.divisible,
				})
			}
		}
		draw(agentID, sandboxSink, out)
		draw(sandboxSource, agentID, in)
		slices.SortStableFunc(events, func(a, b sim.Event) int { return cmp.Compare(a.Tick, b.Tick) })
		cfg := &sim.Config{
			TicksPerDay: ticks, NumDays: 1, Seed: uint64(sseed),
			DeferredCrediting: e.scn.DeferredCrediting, DeadlineCapAtEOD: e.scn.DeadlineCapAtEOD,
			Queue1Ordering: e.scn.Queue1Ordering, PriorityMode: e.scn.PriorityMode,
			Costs: e.scn.Costs,
			Agents: []sim.AgentConfig{
				{ID: sandboxSource, UnsecuredCap: 1 << 50, MaxCollateralCapacity: 0},
				agent,
				{ID: sandboxSink},
			},
			Events: events,
		}
		set.configs = append(set.configs, cfg)
		set.seeds = append(set.seeds, sseed)
	}
	return set, nil
}

// costs evaluates pol on every sample and returns the agent's cost per
// sample, running samples on all cores.
func (e *evaluator) costs(set *sampleSet, pol *policy.Policy) ([]int64, error) {
	res := make([]int64, len(set.configs))
	errs := make([]error, len(set.configs))
	workers := e.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(set.configs))
	// Each worker takes every workers-th sample: no channel per sample,
	// whose cost rivals a 12-tick sandbox day.
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(set.configs); k += workers {
				res[k], errs[k] = runSample(set.configs[k], pol)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

func runSample(base *sim.Config, pol *policy.Policy) (int64, error) {
	cfg := *base
	agents := [3]sim.AgentConfig{base.Agents[0], base.Agents[1], base.Agents[2]}
	agents[1].UsePolicy(pol)
	cfg.Agents = agents[:]
	s, err := sim.New(&cfg, sim.WithoutBalanceHistory())
	if err != nil {
		return 0, fmt.Errorf("bootstrap sample: %w", err)
	}
	for !s.Done() {
		s.Step()
	}
	i, _ := s.AgentIndex(base.Agents[1].ID)
	return s.AgentCost(i), nil
}
