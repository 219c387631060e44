// Package scenario loads SimCash scenario YAML files into a resolved
// sim.Config, applying the reference system's defaults and reporting every
// problem as "file:line:col: field: message".
//
// Decisions where the format is loose:
//   - Unknown keys are warnings (errors with Options.Strict). Legacy keys of
//     old example files (simulation.lsm_enabled, lsm_frequency_ticks, agent
//     overdraft_rate / delay_cost_per_tick, a cost_model block) are reported
//     as unknown and not mapped: SimCash ignores them too, so mapping them
//     would change the numbers against the reference.
//   - lsm_config absent, or a key of it absent, means on, as in SimCash.
//   - A feature SimCash has but sim.Config cannot express (arrival_bands,
//     Categorical priorities, Repeating end_tick, auto_balance_others,
//     policy_feature_toggles, a non-default eod_rush_threshold, the
//     LiquiditySplitting/MockSplitting policies) is a "not implemented"
//     error, never silently dropped.
//   - LogNormal mean/std_dev are passed through as written; the engine
//     interprets them (spec: moments of the amount).
package scenario

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"simcash/policy"
	"simcash/sim"
	"simcash/yamlfile"
)

// Options control loading.
type Options struct {
	// Strict turns unknown-key warnings into errors.
	Strict bool
	// PolicyDirs are searched by base name for FromJson policy files that
	// are not found relative to the scenario.
	PolicyDirs []string
	// Logger receives debug messages (policy paths used); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Warning is a non-fatal problem at a place in the file, e.g. an unknown key.
type Warning = yamlfile.Error

// Default values that sim.Config leaves to the loader.
const (
	DefaultHaircut             = 0.02
	DefaultCollateralCapFactor = 10 // max_collateral_capacity = 10 x unsecured_cap
	DefaultPriority            = 5
	DefaultMaxCycleLength      = 4
	DefaultMaxCyclesPerTick    = 10
	DefaultEscalationStart     = 20
	DefaultEscalationMaxBoost  = 3
	// DefaultEODRushThreshold is SimCash's eod_rush_threshold; sim.Config
	// has no field for it, so only this value is accepted.
	DefaultEODRushThreshold = 0.8
)

// Load reads the scenario file at path.
func Load(path string, opts Options) (*sim.Config, []Warning, error) {
	data, err := yamlfile.ReadLimited(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read scenario: %w", err)
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes parses a scenario; name is the file name used in messages, and
// its directory is where relative policy paths are resolved from.
func LoadBytes(name string, data []byte, opts Options) (*sim.Config, []Warning, error) {
	doc, err := yamlfile.Parse(name, data)
	if err != nil {
		return nil, nil, err
	}
	doc.Strict = opts.Strict
	l := &loader{doc: doc, opts: opts, dir: filepath.Dir(name), log: opts.Logger}
	if l.log == nil {
		l.log = slog.Default()
	}
	cfg := l.load()
	var warnings []Warning
	for _, w := range doc.Warnings() {
		warnings = append(warnings, *w)
	}
	if err := doc.Err(); err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

type loader struct {
	doc  *yamlfile.Doc
	opts Options
	dir  string
	log  *slog.Logger

	agentIDs map[string]bool
	idOrder  []string // config order, for messages
	cfg      *sim.Config
}

var topKeys = []string{
	"simulation", "agents", "cost_rates", "lsm_config", "scenario_events",
	"policy_feature_toggles", "algorithm_sequencing", "entry_disposition_offsetting",
	"deferred_crediting", "deadline_cap_at_eod", "queue1_ordering", "priority_mode",
	"priority_escalation", "eod_rush_threshold",
}

var topHints = map[string]string{
	"cost_model": "costs are set in cost_rates (SimCash ignores cost_model too)",
}

var simHints = map[string]string{
	"lsm_enabled":         "the LSM is set by lsm_config.enable_bilateral/enable_cycles, on by default (SimCash ignores this key too)",
	"lsm_frequency_ticks": "the LSM runs every tick (SimCash ignores this key too)",
}

func (l *loader) load() *sim.Config {
	root := l.doc.Root()
	if !root.IsMap() {
		root.Errorf("a scenario must be a mapping with simulation and agents")
		return nil
	}
	top := root.Map()
	top.KnownHint(topHints, topKeys...)
	cfg := &sim.Config{}
	l.cfg = cfg

	s := top.Require("simulation").Map()
	s.KnownHint(simHints, "ticks_per_day", "num_days", "rng_seed")
	cfg.TicksPerDay = boundedInt(s.Require("ticks_per_day"), MaxTicksPerDay)
	days := s.Require("num_days")
	cfg.NumDays = boundedInt(days, MaxDays)
	if t := int64(cfg.TicksPerDay) * int64(cfg.NumDays); t > MaxTicks {
		days.Errorf("%d days of %d ticks are %d ticks; a run is at most %d", cfg.NumDays, cfg.TicksPerDay, t, MaxTicks)
	}
	seed := s.Require("rng_seed")
	if v := seed.Int64(0); v < 0 {
		seed.Errorf("must be >= 0, got %d", v)
	} else {
		cfg.Seed = uint64(v)
	}

	cfg.DeferredCrediting = top.Get("deferred_crediting").Bool(false)
	cfg.DeadlineCapAtEOD = top.Get("deadline_cap_at_eod").Bool(false)
	cfg.PriorityMode = top.Get("priority_mode").Bool(false)
	cfg.AlgorithmSequencing = top.Get("algorithm_sequencing").Bool(false)
	cfg.EntryDispositionOffsetting = top.Get("entry_disposition_offsetting").Bool(false)
	cfg.Queue1Ordering = queue1Ordering(top.Get("queue1_ordering"))
	cfg.PriorityEscalation = priorityEscalation(top.Get("priority_escalation"))
	if v := top.Get("eod_rush_threshold"); v.Present() {
		f := v.FloatAtLeast(DefaultEODRushThreshold, 0)
		if f > 1 {
			v.Errorf("eod_rush_threshold is a fraction of the day, from 0 to 1 (got %v)", f)
		}
		cfg.EODRushThreshold = &f
	}

	cfg.Costs = costRates(top.Get("cost_rates"))
	cfg.LSM = lsmConfig(top.Get("lsm_config"))

	l.agents(top.Require("agents"))
	l.events(top.Get("scenario_events"))
	l.featureToggles(top.Get("policy_feature_toggles"), cfg)
	return cfg
}

// Input limits: far beyond any real scenario, low enough that a typo
// (num_days: 9223372036854775807) is an error at load time instead of a
// panic or an exhausted machine.
const (
	MaxTicksPerDay = 100_000
	MaxDays        = 10_000
	MaxTicks       = 1_000_000 // per run: ticks_per_day x num_days
	MaxAgents      = 10_000
	MaxRatePerTick = 10_000 // expected payments per agent and tick
)

// boundedInt is positiveInt no larger than limit.
func boundedInt(v yamlfile.Value, limit int) int {
	n := positiveInt(v)
	if n > limit {
		v.Errorf("must be at most %d, got %d", limit, n)
		return 1
	}
	return n
}

func positiveInt(v yamlfile.Value) int {
	n := v.Int(0)
	if v.Present() && n <= 0 {
		v.Errorf("must be > 0, got %d", n)
	}
	return n
}

func nonNegMoney(v yamlfile.Value, def int64) int64 {
	n := v.Money(def)
	if n < 0 {
		v.Errorf("must not be negative, got %d", n)
		return def
	}
	return n
}

// fraction reads a value in [0, 1].
func fraction(v yamlfile.Value, def float64) float64 {
	f := v.Float(def)
	if f < 0 || f > 1 {
		v.Errorf("must be between 0 and 1, got %v", f)
		return def
	}
	return f
}

func intRange(v yamlfile.Value, def, lo, hi int) int {
	n := v.Int(def)
	if n < lo || n > hi {
		v.Errorf("must be between %d and %d, got %d", lo, hi, n)
		return def
	}
	return n
}

func queue1Ordering(v yamlfile.Value) string {
	s := v.String("fifo")
	switch strings.ToLower(s) {
	case "fifo":
		return "fifo"
	case "priority_deadline":
		return "priority_deadline"
	}
	v.Errorf("unknown queue1_ordering %q; use Fifo or priority_deadline", s)
	return "fifo"
}

func priorityEscalation(v yamlfile.Value) sim.PriorityEscalation {
	pe := sim.PriorityEscalation{
		StartEscalatingAtTicks: DefaultEscalationStart,
		MaxBoost:               DefaultEscalationMaxBoost,
	}
	if !v.Present() {
		return pe
	}
	m := v.Map()
	m.Known("enabled", "curve", "threshold_ticks", "start_escalating_at_ticks", "max_boost")
	pe.Enabled = m.Get("enabled").Bool(false)
	// SimCash's engine escalates linearly whatever the curve says, and
	// reads only start_escalating_at_ticks: we do the same and say so.
	c := m.Get("curve")
	if curve := c.String("linear"); curve != "linear" {
		c.Warnf("curve %q is escalated linearly, as SimCash's engine does", curve)
	}
	if th := m.Get("threshold_ticks"); th.Present() {
		th.Warnf("threshold_ticks is ignored, as SimCash's engine does; start_escalating_at_ticks sets the window (default %d)", DefaultEscalationStart)
	}
	pe.StartEscalatingAtTicks = positiveIntDef(m.Get("start_escalating_at_ticks"), DefaultEscalationStart)
	pe.MaxBoost = intRange(m.Get("max_boost"), DefaultEscalationMaxBoost, 0, 10)
	return pe
}

func positiveIntDef(v yamlfile.Value, def int) int {
	if !v.Present() {
		return def
	}
	return positiveInt(v)
}

func lsmConfig(v yamlfile.Value) sim.LSMConfig {
	m := v.Map()
	m.Known("enable_bilateral", "enable_cycles", "max_cycle_length", "max_cycles_per_tick")
	return sim.LSMConfig{
		EnableBilateral:  m.Get("enable_bilateral").Bool(true),
		EnableCycles:     m.Get("enable_cycles").Bool(true),
		MaxCycleLength:   intRange(m.Get("max_cycle_length"), DefaultMaxCycleLength, 3, 10),
		MaxCyclesPerTick: intRange(m.Get("max_cycles_per_tick"), DefaultMaxCyclesPerTick, 1, 100),
	}
}

func costRates(v yamlfile.Value) sim.CostRates {
	c := sim.DefaultCostRates()
	if !v.Present() {
		return c
	}
	m := v.Map()
	m.Known("overdraft_bps_per_tick", "delay_cost_per_tick_per_cent", "collateral_cost_per_tick_bps",
		"liquidity_cost_per_tick_bps", "eod_penalty_per_transaction", "eod_penalty", "deadline_penalty",
		"split_friction_cost", "overdue_delay_multiplier", "priority_delay_multipliers")
	c.OverdraftBpsPerTick = m.Get("overdraft_bps_per_tick").FloatAtLeast(c.OverdraftBpsPerTick, 0)
	c.DelayCostPerTickPerCent = m.Get("delay_cost_per_tick_per_cent").FloatAtLeast(c.DelayCostPerTickPerCent, 0)
	c.CollateralCostPerTickBps = m.Get("collateral_cost_per_tick_bps").FloatAtLeast(c.CollateralCostPerTickBps, 0)
	c.LiquidityCostPerTickBps = m.Get("liquidity_cost_per_tick_bps").FloatAtLeast(c.LiquidityCostPerTickBps, 0)
	c.OverdueDelayMultiplier = m.Get("overdue_delay_multiplier").FloatAtLeast(c.OverdueDelayMultiplier, 0)
	c.SplitFrictionCost = nonNegMoney(m.Get("split_friction_cost"), c.SplitFrictionCost)
	c.DeadlinePenalty = penalty(m.Get("deadline_penalty"), c.DeadlinePenalty)

	eod, alias := m.Get("eod_penalty_per_transaction"), m.Get("eod_penalty")
	if eod.Present() && alias.Present() {
		alias.Errorf("eod_penalty is an alias of eod_penalty_per_transaction; give only one")
	} else if alias.Present() {
		eod = alias
	}
	c.EODPenaltyPerTransaction = penalty(eod, c.EODPenaltyPerTransaction)

	if pm := m.Get("priority_delay_multipliers"); pm.Present() {
		pmm := pm.Map()
		pmm.Known("urgent_multiplier", "normal_multiplier", "low_multiplier")
		c.PriorityDelayMultipliers = &sim.PriorityDelayMultipliers{
			Urgent: pmm.Get("urgent_multiplier").FloatAtLeast(1, 0),
			Normal: pmm.Get("normal_multiplier").FloatAtLeast(1, 0),
			Low:    pmm.Get("low_multiplier").FloatAtLeast(1, 0),
		}
	}
	return c
}

// penalty reads an int (fixed cents), {mode: fixed, amount} or
// {mode: rate, bps_per_event}.
func penalty(v yamlfile.Value, def sim.Penalty) sim.Penalty {
	if !v.Present() {
		return def
	}
	if !v.IsMap() {
		return sim.Penalty{Amount: nonNegMoney(v, def.Amount)}
	}
	m := v.Map()
	mode := m.Require("mode")
	switch mode.String("") {
	case "fixed":
		m.Known("mode", "amount")
		return sim.Penalty{Amount: nonNegMoney(m.Require("amount"), 0)}
	case "rate":
		m.Known("mode", "bps_per_event")
		return sim.Penalty{Rate: true, BpsPerEvent: m.Require("bps_per_event").FloatAtLeast(0, 0)}
	case "":
		return def
	}
	mode.Errorf("unknown penalty mode %q; use fixed or rate", mode.String(""))
	return def
}

// policyCategories are SimCash's policy feature categories.
var policyCategories = []string{
	"ComparisonOperator", "LogicalOperator", "BinaryArithmetic", "NaryArithmetic", "UnaryMath", "TernaryMath",
	"ValueType", "PaymentAction", "BankAction", "CollateralAction", "RtgsAction", "TransactionField", "AgentField",
	"QueueField", "CollateralField", "CostField", "TimeField", "LsmField", "ThroughputField", "StateRegisterField",
	"SystemField",
}

// featureToggles reads policy_feature_toggles (include or exclude a list of
// SimCash's feature categories) and checks each agent's policy actions
// against them. Operator and field categories are checked for their names
// only.
func (l *loader) featureToggles(v yamlfile.Value, cfg *sim.Config) {
	if !v.Present() {
		return
	}
	m := v.Map()
	m.Known("include", "exclude")
	inc, exc := m.Get("include"), m.Get("exclude")
	if inc.Present() == exc.Present() {
		v.Errorf("give exactly one of include or exclude")
		return
	}
	list := inc
	if exc.Present() {
		list = exc
	}
	named := map[string]bool{}
	for _, c := range list.List() {
		name := c.String("")
		if !slices.Contains(policyCategories, name) {
			c.Errorf("unknown category %q; valid: %s", name, strings.Join(policyCategories, ", "))
			continue
		}
		named[name] = true
	}
	for i := range cfg.Agents {
		a := &cfg.Agents[i]
		if a.Policy == nil || a.Policy.IsBuiltin() {
			continue // SimCash checks JSON policies only
		}
		for _, k := range a.Policy.ActionKinds() {
			cat := policy.ActionCategory(k)
			if named[cat] == exc.Present() {
				v.Errorf("agent %s: its policy uses %v (%s), which policy_feature_toggles forbids", a.ID, k, cat)
			}
		}
	}
}
