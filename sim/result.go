package sim

// Result is what a run produced. Agents are in id order.
type Result struct {
	Seed         uint64
	Ticks        int
	TotalCost    int64
	Agents       []AgentResult
	PolicyErrors int
}

// AgentResult is one agent's outcome. Costs is the sum over days.
type AgentResult struct {
	ID             string
	Costs          Costs
	DailyCosts     []Costs
	Arrivals       int
	Settled        int
	FinalBalance   int64
	BalanceHistory []int64
}

// Agent returns the result of the agent with the given id, or nil.
func (r *Result) Agent(id string) *AgentResult {
	for i := range r.Agents {
		if r.Agents[i].ID == id {
			return &r.Agents[i]
		}
	}
	return nil
}

// Result summarises the run so far.
func (s *Sim) Result() *Result {
	settled := s.settledCounts()
	r := &Result{Seed: s.rng0, Ticks: s.tick, Agents: make([]AgentResult, len(s.agents)), PolicyErrors: s.policyErrors}
	for i, a := range s.agents {
		days := append(append([]Costs(nil), a.days...), a.day)
		r.Agents[i] = AgentResult{
			ID: a.cfg.ID, Costs: a.total, DailyCosts: days, Arrivals: a.arrivals, Settled: settled[i],
			FinalBalance: a.balance, BalanceHistory: a.history,
		}
		r.TotalCost += a.total.Total()
	}
	return r
}

// AgentCost returns an agent's total cost so far without building a Result
// (the bootstrap evaluator's hot path).
func (s *Sim) AgentCost(i int32) int64 { return s.agents[i].total.Total() }
