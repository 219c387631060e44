package sim

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"simcash/policy"
)

// TxStatus is where a transaction stands.
type TxStatus uint8

const (
	TxPending TxStatus = iota
	TxSettled
	TxDropped
)

// Tx is a payment. Amounts are cents; ticks are absolute.
type Tx struct {
	ID          int32
	Sender      int32 // agent index (id order)
	Receiver    int32
	Amount      int64
	Remaining   int64
	Arrival     int32
	Deadline    int32
	Priority    int32
	Divisible   bool // as configured; SimCash splits any payment a policy splits
	Status      TxStatus
	Overdue     bool
	Parent      int32 // -1 for an original payment
	SettledTick int32

	origPriority int32 // priority before escalation
	overdueSince int32
	declared     int8 // declared RTGS priority (rtgsHighlyUrgent..rtgsNormal), -1 none
	rtgs         int8 // RTGS priority while submitted, -1 none
	rtgsTick     int32
	childrenLeft int32
	children     int32 // split parts, numbered from firstChild
	firstChild   int32
	rtgsLeft     int64 // a split parent's amount not yet settled by RTGS
	rtgsDone     bool  // its parts all settled by RTGS (SimCash's "fully settled")
	inQ2         bool
}

// RTGS priorities, in Q2's priority-mode order.
const (
	rtgsNone         = -1
	rtgsHighlyUrgent = 0
	rtgsUrgent       = 1
	rtgsNormal       = 2
)

// Costs are an agent's cost accumulators in cents.
type Costs struct {
	Liquidity       int64 `json:"liquidity"`
	Delay           int64 `json:"delay"`
	Overdraft       int64 `json:"overdraft"`
	Collateral      int64 `json:"collateral"`
	DeadlinePenalty int64 `json:"deadline_penalty"`
	EODPenalty      int64 `json:"eod_penalty"`
	SplitFriction   int64 `json:"split_friction"`
}

// Total is the sum of all cost types.
func (c Costs) Total() int64 {
	return c.Liquidity + c.Delay + c.Overdraft + c.Collateral + c.DeadlinePenalty + c.EODPenalty + c.SplitFriction
}

func (c *Costs) add(o Costs) {
	c.Liquidity += o.Liquidity
	c.Delay += o.Delay
	c.Overdraft += o.Overdraft
	c.Collateral += o.Collateral
	c.DeadlinePenalty += o.DeadlinePenalty
	c.EODPenalty += o.EODPenalty
	c.SplitFriction += o.SplitFriction
}

type collateralTimer struct {
	at     int
	amount int64
}

type agent struct {
	cfg *AgentConfig
	idx int32
	pol *policy.Policy
	ctx policy.Context

	balance      int64
	unsecuredCap int64
	posted       int64
	haircut      float64
	maxColl      int64 // max_collateral_capacity; -1: 10 x the current unsecured cap
	fraction     float64
	allocated    int64

	q1       []int32
	q2Count  int
	q2Value  int64
	credit   int64 // deferred credits received this tick
	outflow  int64 // today's outflow, for the multilateral limit
	multiCap int64 // -1: none
	bilOut   []int64
	bilCap   []int64 // -1: none; indexed by agent index; nil when no limits

	day   Costs
	total Costs
	days  []Costs

	arrivals int
	history  []int64

	// arrivals
	arr        *ArrivalConfig
	rate       float64
	candidates []int32   // other agents in config order
	weights    []float64 // per candidate; nil = uniform
	weightSum  float64
	dlMin      int64
	dlMax      int64

	// bank tree output for the current tick
	budgetOn   bool
	budgetLeft int64
	perCpty    int64
	perCptyOn  bool
	cptyUsed   []int64
	focus      []bool

	timers     []collateralTimer
	releaseAll bool // the payment tree always releases
	q2Acts     bool // the payment tree can withdraw from or resubmit to RTGS
	bands      *ArrivalBands
	bandList   []band
	logNormal  [2]float64 // mu, sigma of a LogNormal amount distribution
	expRate    float64    // the rate expNeg was computed for
	expNeg     float64    // exp(-rate), Poisson's L
	baseRate   float64    // configured rate, for rate-change events

	tickCosts  Costs
	q2Weighted int64 // delay weight of Q1 and Q2 this tick
	nearestQ2  int32 // nearest deadline of its own queued payments
}

// allowedOverdraft is floor(posted*(1-haircut)) + unsecured cap.
func (a *agent) allowedOverdraft() int64 {
	return int64(math.Floor(float64(a.posted)*(1-a.haircut))) + a.unsecuredCap
}

// available is max(balance,0) + max(0, allowed overdraft - credit used).
func (a *agent) available() int64 {
	used := max(0, -a.balance)
	return max(a.balance, 0) + max(0, a.allowedOverdraft()-used)
}

// Sim is one simulation run. It is not safe for concurrent use; run many
// Sims in parallel instead.
type Sim struct {
	cfg      *Config
	rng      *RNG
	agents   []*agent // id order
	byID     map[string]int32
	txs      []Tx
	q2       []int32
	pending  []int32
	tick     int
	ticks    int
	tpd      int
	q2Seq    int32
	log      func(LogEntry)
	events   []LogEntry
	eventOn  bool
	once     []int // indices of one-time events sorted by tick (stable)
	onceNext int
	repeat   []int

	decisions []policy.Action
	keep      []int32
	lsm       *lsmState
	net       []int64
	scaled    scaledRates

	policyErrors int
	rng0         uint64
	history      bool
	hasTree      [policy.NumTrees]bool // some agent's policy has the tree
	q2Actions    bool                  // some agent has q2Acts
	eodRush      float64
}

type scaledRates struct {
	liquidity  int64 // round(bps*1e6)
	overdraft  int64 // round(bps*1000)
	collateral int64 // round(bps*1e6)
	delay      int64 // round(rate*1e6)
	overdueM   int64 // round(mult*1000)
	prioM      [3]int64
}

// Option configures a Sim.
type Option func(*Sim)

// WithSeed overrides the scenario's seed.
func WithSeed(seed uint64) Option { return func(s *Sim) { s.rng0 = seed } }

// WithTicks runs n ticks instead of num_days*ticks_per_day.
func WithTicks(n int) Option { return func(s *Sim) { s.ticks = n } }

// WithEventLog records every engine event; Events returns them.
func WithEventLog() Option { return func(s *Sim) { s.eventOn = true } }

// WithEventFunc streams every engine event to fn instead of keeping them.
func WithEventFunc(fn func(LogEntry)) Option { return func(s *Sim) { s.log = fn } }

// WithoutBalanceHistory skips the per-tick balance history (bootstrap
// samples do not need it).
func WithoutBalanceHistory() Option { return func(s *Sim) { s.history = false } }

// New prepares a simulation of cfg. cfg must not change while the Sim runs.
func New(cfg *Config, opts ...Option) (*Sim, error) {
	if cfg.TicksPerDay <= 0 || cfg.NumDays <= 0 {
		return nil, fmt.Errorf("sim: ticks_per_day and num_days must be positive (got %d, %d)", cfg.TicksPerDay, cfg.NumDays)
	}
	if len(cfg.Agents) == 0 {
		return nil, fmt.Errorf("sim: scenario has no agents")
	}
	s := &Sim{cfg: cfg, tpd: cfg.TicksPerDay, ticks: cfg.TicksPerDay * cfg.NumDays, history: true, eodRush: 0.8}
	if cfg.EODRushThreshold != nil {
		s.eodRush = *cfg.EODRushThreshold
	}
	s.rng0 = cfg.Seed
	for _, o := range opts {
		o(s)
	}
	if s.rng == nil {
		s.rng = NewRNG(s.rng0)
	}
	if s.eventOn && s.log == nil {
		s.log = func(e LogEntry) { s.events = append(s.events, e) }
	}
	order := make([]int, len(cfg.Agents))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(cfg.Agents[a].ID, cfg.Agents[b].ID) })
	s.byID = make(map[string]int32, len(order))
	s.agents = make([]*agent, len(order))
	store := make([]agent, len(order)) // one allocation for all agents
	for i, ci := range order {
		ac := &cfg.Agents[ci]
		if _, dup := s.byID[ac.ID]; dup {
			return nil, fmt.Errorf("sim: duplicate agent id %q", ac.ID)
		}
		s.byID[ac.ID] = int32(i)
		store[i] = agent{cfg: ac, idx: int32(i)}
		s.agents[i] = &store[i]
	}
	var hist []int64
	if s.history {
		hist = make([]int64, len(order)*s.ticks)
	}
	for i, a := range s.agents {
		if err := s.initAgent(a); err != nil {
			return nil, err
		}
		a.baseRate = a.rate
		if s.history {
			a.history = hist[i*s.ticks : i*s.ticks : (i+1)*s.ticks]
		}
	}
	if err := s.initEvents(); err != nil {
		return nil, err
	}
	c := &cfg.Costs
	s.scaled = scaledRates{
		liquidity:  scaleRate(c.LiquidityCostPerTickBps, 1e6),
		overdraft:  scaleRate(c.OverdraftBpsPerTick, 1000),
		collateral: scaleRate(c.CollateralCostPerTickBps, 1e6),
		delay:      scaleRate(c.DelayCostPerTickPerCent, 1e6),
		overdueM:   scaleRate(c.OverdueDelayMultiplier, 1000),
		prioM:      [3]int64{1000, 1000, 1000},
	}
	if p := c.PriorityDelayMultipliers; p != nil {
		s.scaled.prioM = [3]int64{scaleRate(p.Low, 1000), scaleRate(p.Normal, 1000), scaleRate(p.Urgent, 1000)}
	}
	// Size the transaction list for the expected arrivals: growing it is
	// the largest cost of big networks.
	expect := len(cfg.Events) + 16
	for _, a := range s.agents {
		expect += int(a.rate*float64(s.ticks)*1.1) + 1
	}
	s.txs = make([]Tx, 0, expect)
	return s, nil
}

var (
	fifoOnce sync.Once
	fifo     *policy.Policy
	fifoErr  error
)

// defaultPolicy is Fifo, parsed once: agents without a policy release
// everything.
func defaultPolicy() (*policy.Policy, error) {
	fifoOnce.Do(func() { fifo, fifoErr = policy.Builtin("Fifo") })
	return fifo, fifoErr
}

func (s *Sim) initAgent(a *agent) error {
	ac := a.cfg
	a.balance = ac.OpeningBalance
	a.unsecuredCap = ac.UnsecuredCap
	a.posted = ac.PostedCollateral
	a.haircut = ac.CollateralHaircut
	a.maxColl = ac.MaxCollateralCapacity
	if ac.MaxCollateralCapacityDefault {
		a.maxColl = -1
	}
	a.pol = ac.Policy
	if a.pol == nil {
		p, err := defaultPolicy()
		if err != nil {
			return fmt.Errorf("sim: agent %s: default policy: %w", ac.ID, err)
		}
		a.pol = p
	}
	a.releaseAll = a.pol.ReleasesAll()
	a.q2Acts = a.pol.Uses(policy.PaymentTree, policy.WithdrawFromRtgs) || a.pol.Uses(policy.PaymentTree, policy.ResubmitToRtgs)
	s.q2Actions = s.q2Actions || a.q2Acts
	for t := range policy.NumTrees {
		s.hasTree[t] = s.hasTree[t] || a.pol.Has(t)
	}
	a.ctx.State = make([]float64, len(a.pol.StateKeys()))
	// Day 0 allocates the scenario's liquidity_allocation_fraction; later
	// days the policy's initial_liquidity_fraction (JSON policies only),
	// else 1.0: SimCash's Orchestrator::new and allocate_daily_liquidity.
	day0 := 1.0
	if ac.LiquidityAllocationFraction != nil {
		day0 = *ac.LiquidityAllocationFraction
	}
	a.fraction = 1.0
	if f, ok := a.pol.Param("initial_liquidity_fraction"); ok && !a.pol.IsBuiltin() {
		a.fraction = f
	}
	if ac.LiquidityPool > 0 {
		a.allocated = int64(math.Floor(float64(ac.LiquidityPool) * day0))
		a.balance += a.allocated
	}
	a.multiCap = -1
	if ac.MultilateralLimit != nil {
		a.multiCap = *ac.MultilateralLimit
	}
	if len(ac.BilateralLimits) > 0 {
		a.bilCap = make([]int64, len(s.agents))
		a.bilOut = make([]int64, len(s.agents))
		for i := range a.bilCap {
			a.bilCap[i] = -1
		}
		for id, lim := range ac.BilateralLimits {
			j, ok := s.byID[id]
			if !ok {
				return fmt.Errorf("sim: agent %s: bilateral limit names unknown agent %q", ac.ID, id)
			}
			a.bilCap[j] = lim
		}
	}
	// candidates: the other agents in config order
	for ci := range s.cfg.Agents {
		id := s.cfg.Agents[ci].ID
		if id == ac.ID {
			continue
		}
		a.candidates = append(a.candidates, s.byID[id])
	}
	if ac.Bands != nil && ac.Arrivals == nil {
		a.bands = ac.Bands
		s.initBands(a)
	}
	if ac.Arrivals != nil {
		a.arr = ac.Arrivals
		a.rate = ac.Arrivals.RatePerTick
		a.dlMin, a.dlMax = int64(ac.Arrivals.DeadlineMin), int64(ac.Arrivals.DeadlineMax)
		if ac.Arrivals.Amount.Kind == LogNormal {
			a.logNormal[0], a.logNormal[1] = logNormalParams(&ac.Arrivals.Amount)
		}
		a.expRate, a.expNeg = a.rate, math.Exp(-a.rate)
		if len(ac.Arrivals.CounterpartyWeights) > 0 {
			for id := range ac.Arrivals.CounterpartyWeights {
				if _, ok := s.byID[id]; !ok {
					return fmt.Errorf("sim: agent %s: counterparty weight names unknown agent %q", ac.ID, id)
				}
			}
			s.setWeights(a)
		}
	}
	return nil
}

func (s *Sim) setWeights(a *agent) {
	a.weights, a.weightSum = s.weightsFor(a.candidates, a.arr.CounterpartyWeights)
}

// weightsFor lays counterparty weights out per candidate (absent ones count
// 1.0); nil when w is empty (uniform choice).
func (s *Sim) weightsFor(candidates []int32, w map[string]float64) ([]float64, float64) {
	if len(w) == 0 {
		return nil, 0
	}
	out := make([]float64, len(candidates))
	var sum float64
	for i, c := range candidates {
		v, ok := w[s.agents[c].cfg.ID]
		if !ok {
			v = 1.0
		}
		out[i] = v
		sum += v
	}
	return out, sum
}

// Events returns the recorded event log (WithEventLog).
func (s *Sim) Events() []LogEntry { return s.events }

// Transactions returns every transaction created so far, indexed by ID.
func (s *Sim) Transactions() []Tx { return s.txs }

// AgentID returns the id of the agent at index i (id order).
func (s *Sim) AgentID(i int32) string { return s.agents[i].cfg.ID }

// AgentIndex returns the index of an agent id.
func (s *Sim) AgentIndex(id string) (int32, bool) { i, ok := s.byID[id]; return i, ok }

// Tick is the next tick to run.
func (s *Sim) Tick() int { return s.tick }

// Done reports whether every tick has run.
func (s *Sim) Done() bool { return s.tick >= s.ticks }

// Run runs every remaining tick and returns the result.
func (s *Sim) Run() *Result {
	for s.tick < s.ticks {
		s.Step()
	}
	return s.Result()
}

func (s *Sim) emit(e LogEntry) {
	e.Tick = int32(s.tick)
	s.log(e)
}
