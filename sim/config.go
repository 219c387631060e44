package sim

import "simcash/policy"

// Config is a fully resolved scenario: what the engine needs to run, with
// every default applied. The scenario package builds it from YAML; tests and
// the experiment loop may build it directly.
type Config struct {
	TicksPerDay int
	NumDays     int
	Seed        uint64

	DeferredCrediting bool
	DeadlineCapAtEOD  bool
	// Queue1Ordering "fifo" (default) or "priority_deadline".
	Queue1Ordering string
	// PriorityMode orders Q2 by RTGS priority, then submission tick.
	PriorityMode bool

	// EntryDispositionOffsetting: a payment entering Q2 is first offset
	// bilaterally against queued payments in the other direction.
	EntryDispositionOffsetting bool
	// AlgorithmSequencing runs the LSM algorithms in the fixed TARGET2 order
	// (bilateral, then cycles); it is how our LSM always runs.
	AlgorithmSequencing bool
	PriorityEscalation  PriorityEscalation
	// EODRushThreshold is the day fraction from which is_eod_rush is 1;
	// nil means 0.8.
	EODRushThreshold *float64

	Costs  CostRates
	LSM    LSMConfig
	Agents []AgentConfig // config order; the engine iterates in id order
	Events []Event       // config order
}

// PriorityEscalation raises a queued payment's priority as its deadline nears.
type PriorityEscalation struct {
	Enabled                bool
	StartEscalatingAtTicks int
	MaxBoost               int
}

// Penalty is a fixed amount in cents or a rate on the payment's amount.
type Penalty struct {
	Rate        bool
	Amount      int64   // fixed mode, cents
	BpsPerEvent float64 // rate mode
}

// Of returns the penalty for a payment of amount cents:
// floor(|amount| * trunc(bps*1e6) / 1e10) in rate mode.
func (p Penalty) Of(amount int64) int64 {
	if !p.Rate {
		return p.Amount
	}
	if amount < 0 {
		amount = -amount
	}
	scaled := int64(p.BpsPerEvent * 1e6) // trunc
	return mulDiv(amount, scaled, 1e10)
}

// CostRates are the scenario's cost parameters. Rates are floats; the
// engine converts them to scaled integers once, as the spec states.
type CostRates struct {
	OverdraftBpsPerTick      float64 // default 0.001
	DelayCostPerTickPerCent  float64 // default 0.0001
	CollateralCostPerTickBps float64 // default 0.0002
	LiquidityCostPerTickBps  float64 // default 0
	OverdueDelayMultiplier   float64 // default 5.0
	DeadlinePenalty          Penalty // default 50000
	EODPenaltyPerTransaction Penalty // default 10000
	SplitFrictionCost        int64   // default 1000
	PriorityDelayMultipliers *PriorityDelayMultipliers
}

// PriorityDelayMultipliers scales delay cost by priority band
// (urgent 8-10, normal 4-7, low 0-3). Nil means 1 for every band.
type PriorityDelayMultipliers struct {
	Urgent, Normal, Low float64
}

// DefaultCostRates returns the spec's defaults.
func DefaultCostRates() CostRates {
	return CostRates{
		OverdraftBpsPerTick:      0.001,
		DelayCostPerTickPerCent:  0.0001,
		CollateralCostPerTickBps: 0.0002,
		OverdueDelayMultiplier:   5.0,
		DeadlinePenalty:          Penalty{Amount: 50000},
		EODPenaltyPerTransaction: Penalty{Amount: 10000},
		SplitFrictionCost:        1000,
	}
}

// LSMConfig switches the liquidity-saving mechanisms on Q2.
type LSMConfig struct {
	EnableBilateral  bool
	EnableCycles     bool
	MaxCycleLength   int // default 4
	MaxCyclesPerTick int // default 10
}

// AgentConfig is one bank.
type AgentConfig struct {
	ID                    string
	OpeningBalance        int64
	UnsecuredCap          int64
	PostedCollateral      int64
	CollateralHaircut     float64 // default 0.02
	MaxCollateralCapacity int64   // default 10 x UnsecuredCap
	// MaxCollateralCapacityDefault: no capacity was configured, so it is
	// 10 x the unsecured cap in force (which CollateralAdjustment moves).
	MaxCollateralCapacityDefault bool
	LiquidityPool                int64 // 0 = no pool
	// LiquidityAllocationFraction is the fraction of the pool allocated on
	// day 0; nil means 1.0. Later days use the policy's
	// initial_liquidity_fraction (JSON policies), else 1.0.
	LiquidityAllocationFraction *float64
	BilateralLimits             map[string]int64 // counterparty -> daily outflow cap
	MultilateralLimit           *int64           // daily outflow cap

	Policy   *policy.Policy
	Arrivals *ArrivalConfig // nil: no stochastic arrivals
	// Bands are per-priority-band arrivals (arrival_bands), instead of
	// Arrivals.
	Bands *ArrivalBands
}

// ArrivalBands drive an agent's arrivals per priority band: urgent
// (priority 8-10), normal (4-7) and low (0-3), each drawn uniformly within
// its band. Nil bands are off.
type ArrivalBands struct {
	Urgent, Normal, Low *ArrivalBand
}

// ArrivalBand is one band's arrival process.
type ArrivalBand struct {
	RatePerTick         float64
	Amount              Distribution
	CounterpartyWeights map[string]float64
	DeadlineMin         int
	DeadlineMax         int
	Divisible           bool
}

// ArrivalConfig drives the agent's stochastic payments.
type ArrivalConfig struct {
	RatePerTick float64
	Amount      Distribution
	// CounterpartyWeights by agent id; empty means uniform over the others.
	CounterpartyWeights map[string]float64
	DeadlineMin         int
	DeadlineMax         int
	Priority            int
	PriorityDist        *Distribution // Uniform or Categorical; one draw when set
	Divisible           bool
}

// DistKind is an amount distribution family.
type DistKind int

const (
	Uniform DistKind = iota
	Normal
	LogNormal
	Exponential
	Categorical // priorities only: Values with Weights
)

// Distribution of payment amounts (cents) or priorities.
type Distribution struct {
	Kind   DistKind
	Min    int64   // Uniform
	Max    int64   // Uniform, inclusive
	Mean   float64 // Normal, LogNormal (moments of the amount)
	StdDev float64
	Lambda float64 // Exponential
	Cat    *Categories
}

// Categories are a Categorical priority distribution: Values drawn with
// their Weights.
type Categories struct {
	Values  []int64
	Weights []float64
}

// EventKind is a scenario event type.
type EventKind int

const (
	CustomTransactionArrival EventKind = iota
	DirectTransfer
	ScheduledSettlement
	CollateralAdjustment
	GlobalArrivalRateChange
	AgentArrivalRateChange
	CounterpartyWeightChange
	DeadlineWindowChange
)

// Event is a scheduled scenario event. Which fields matter depends on Kind.
type Event struct {
	Kind EventKind
	// Schedule: OneTime at Tick, or Repeating from Tick every Interval.
	Tick     int
	Interval int // 0 = one time

	FromAgent, ToAgent, Agent string
	Amount                    int64
	Priority                  int
	Deadline                  *int // relative ticks; nil = default
	Divisible                 bool
	Delta                     int64   // CollateralAdjustment
	Multiplier                float64 // rate changes
	Counterparty              string  // CounterpartyWeightChange
	NewWeight                 float64
	MinTicksMultiplier        *float64 // DeadlineWindowChange
	MaxTicksMultiplier        *float64
}

// DefaultRunnerFraction is the pool fraction SimCash's experiment runner
// gives an agent whose policy has no initial_liquidity_fraction.
const DefaultRunnerFraction = 0.5

// UsePolicy gives the agent policy p the way SimCash's experiment runner
// applies a policy to an agent: p becomes a JSON policy, and the fraction
// of the pool allocated on day 0 follows p's initial_liquidity_fraction
// (DefaultRunnerFraction when p has none and the agent has a pool).
func (a *AgentConfig) UsePolicy(p *policy.Policy) {
	p = p.AsJSON()
	a.Policy = p
	if f, ok := p.Param("initial_liquidity_fraction"); ok {
		a.LiquidityAllocationFraction = &f
	} else if a.LiquidityPool > 0 {
		f := DefaultRunnerFraction
		a.LiquidityAllocationFraction = &f
	}
}
