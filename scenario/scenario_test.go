package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"simcash/policy"
	"simcash/sim"
	"simcash/yamlfile"
)

const testdata = "../testdata/scenarios"

func loadString(t *testing.T, src string, opts Options) (*sim.Config, []Warning, error) {
	t.Helper()
	return LoadBytes("s.yaml", []byte(src), opts)
}

func mustLoadString(t *testing.T, src string) (*sim.Config, []Warning) {
	t.Helper()
	cfg, w, err := loadString(t, src, Options{})
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	return cfg, w
}

const minimal = `
simulation: {ticks_per_day: 10, num_days: 2, rng_seed: 3}
agents:
  - id: A
    opening_balance: 1000
    unsecured_cap: 500
    arrival_config:
      rate_per_tick: 0.5
      amount_distribution: {type: Uniform, min: 10, max: 20}
      deadline_range: [2, 4]
  - id: B
    opening_balance: 0
`

func TestDefaults(t *testing.T) {
	cfg, w := mustLoadString(t, minimal)
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if cfg.TicksPerDay != 10 || cfg.NumDays != 2 || cfg.Seed != 3 {
		t.Errorf("simulation = %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.Costs, sim.DefaultCostRates()) {
		t.Errorf("costs = %+v", cfg.Costs)
	}
	if want := (sim.LSMConfig{EnableBilateral: true, EnableCycles: true, MaxCycleLength: 4, MaxCyclesPerTick: 10}); cfg.LSM != want {
		t.Errorf("LSM = %+v", cfg.LSM)
	}
	if want := (sim.PriorityEscalation{StartEscalatingAtTicks: 20, MaxBoost: 3}); cfg.PriorityEscalation != want {
		t.Errorf("escalation = %+v", cfg.PriorityEscalation)
	}
	if cfg.Queue1Ordering != "fifo" || cfg.DeferredCrediting || cfg.DeadlineCapAtEOD || cfg.PriorityMode || cfg.AlgorithmSequencing || cfg.EntryDispositionOffsetting {
		t.Errorf("toggles = %+v", cfg)
	}
	a := cfg.Agents[0]
	if a.CollateralHaircut != 0.02 || a.MaxCollateralCapacity != 5000 || a.LiquidityAllocationFraction != nil || a.BilateralLimits != nil || a.MultilateralLimit != nil {
		t.Errorf("agent A = %+v", a)
	}
	if a.Arrivals.Priority != 5 || a.Arrivals.CounterpartyWeights != nil || a.Arrivals.Divisible {
		t.Errorf("arrivals = %+v", a.Arrivals)
	}
	if a.Policy == nil || !a.Policy.Has(policy.PaymentTree) {
		t.Errorf("absent policy should be Fifo, got %v", a.Policy)
	}
	if cfg.Agents[1].Arrivals != nil {
		t.Errorf("B has arrivals")
	}
}

func TestTopLevelSettings(t *testing.T) {
	cfg, w := mustLoadString(t, `
simulation: {ticks_per_day: 10, num_days: 1, rng_seed: 0}
deferred_crediting: true
deadline_cap_at_eod: true
queue1_ordering: priority_deadline
priority_mode: true
algorithm_sequencing: true
entry_disposition_offsetting: true
eod_rush_threshold: 0.8
priority_escalation: {enabled: true, start_escalating_at_ticks: 7, max_boost: 2}
lsm_config: {enable_cycles: false, max_cycle_length: 5, max_cycles_per_tick: 3}
cost_rates:
  overdraft_bps_per_tick: 0.5
  eod_penalty: 777
  deadline_penalty: {mode: rate, bps_per_event: 12.5}
  split_friction_cost: 3
  priority_delay_multipliers: {urgent_multiplier: 1.5, low_multiplier: 0.5}
agents:
  - id: A
    opening_balance: -100
    posted_collateral: 2000
    collateral_haircut: 0.1
    max_collateral_capacity: 9000
    liquidity_pool: 5000
    liquidity_allocation_fraction: 0.25
    limits: {bilateral_limits: {B: 300}, multilateral_limit: 900}
  - id: B
    opening_balance: 0
    bilateral_limits: {A: 100}
`)
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if !cfg.DeferredCrediting || !cfg.DeadlineCapAtEOD || cfg.Queue1Ordering != "priority_deadline" || !cfg.PriorityMode || !cfg.AlgorithmSequencing || !cfg.EntryDispositionOffsetting {
		t.Errorf("toggles = %+v", cfg)
	}
	if want := (sim.PriorityEscalation{Enabled: true, StartEscalatingAtTicks: 7, MaxBoost: 2}); cfg.PriorityEscalation != want {
		t.Errorf("escalation = %+v", cfg.PriorityEscalation)
	}
	if want := (sim.LSMConfig{EnableBilateral: true, MaxCycleLength: 5, MaxCyclesPerTick: 3}); cfg.LSM != want {
		t.Errorf("LSM = %+v", cfg.LSM)
	}
	c := cfg.Costs
	if c.OverdraftBpsPerTick != 0.5 || c.EODPenaltyPerTransaction != (sim.Penalty{Amount: 777}) ||
		c.DeadlinePenalty != (sim.Penalty{Rate: true, BpsPerEvent: 12.5}) || c.SplitFrictionCost != 3 ||
		*c.PriorityDelayMultipliers != (sim.PriorityDelayMultipliers{Urgent: 1.5, Normal: 1, Low: 0.5}) ||
		c.DelayCostPerTickPerCent != 0.0001 {
		t.Errorf("costs = %+v", c)
	}
	a := cfg.Agents[0]
	if a.OpeningBalance != -100 || a.PostedCollateral != 2000 || a.CollateralHaircut != 0.1 || a.MaxCollateralCapacity != 9000 ||
		a.LiquidityPool != 5000 || *a.LiquidityAllocationFraction != 0.25 || a.BilateralLimits["B"] != 300 || *a.MultilateralLimit != 900 {
		t.Errorf("agent A = %+v", a)
	}
	if cfg.Agents[1].BilateralLimits["A"] != 100 {
		t.Errorf("agent B limits = %v", cfg.Agents[1].BilateralLimits)
	}
}

func TestPenaltyForms(t *testing.T) {
	cases := []struct {
		src  string
		want sim.Penalty
	}{
		{"2500", sim.Penalty{Amount: 2500}},
		{"{mode: fixed, amount: 40}", sim.Penalty{Amount: 40}},
		{"{mode: rate, bps_per_event: 3}", sim.Penalty{Rate: true, BpsPerEvent: 3}},
	}
	for _, c := range cases {
		for _, key := range []string{"eod_penalty_per_transaction", "eod_penalty"} {
			cfg, _ := mustLoadString(t, "simulation: {ticks_per_day: 1, num_days: 1, rng_seed: 1}\nagents: [{id: A, opening_balance: 0}]\ncost_rates: {"+key+": "+c.src+"}\n")
			if cfg.Costs.EODPenaltyPerTransaction != c.want {
				t.Errorf("%s: %s = %+v, want %+v", key, c.src, cfg.Costs.EODPenaltyPerTransaction, c.want)
			}
		}
	}
}

func TestEvents(t *testing.T) {
	cfg, w := mustLoadString(t, `
simulation: {ticks_per_day: 10, num_days: 1, rng_seed: 1}
agents: [{id: A, opening_balance: 0}, {id: B, opening_balance: 0}, {id: C, opening_balance: 0}]
scenario_events:
  - {type: CustomTransactionArrival, from_agent: A, to_agent: B, amount: 50, schedule: {type: OneTime, tick: 2}}
  - {type: CustomTransactionArrival, from_agent: B, to_agent: A, amount: 60, priority: 9, deadline: 4, is_divisible: true, schedule: {type: Repeating, start_tick: 1, interval: 3}}
  - {type: DirectTransfer, from_agent: C, to_agent: A, amount: 70, schedule: {type: OneTime, tick: 0}}
  - {type: ScheduledSettlement, from_agent: A, to_agent: C, amount: 80, schedule: {type: OneTime, tick: 5}}
  - {type: CollateralAdjustment, agent: B, delta: -90, schedule: {type: OneTime, tick: 3}}
  - {type: GlobalArrivalRateChange, multiplier: 1.5, schedule: {type: OneTime, tick: 4}}
  - {type: AgentArrivalRateChange, agent: C, multiplier: 0.5, schedule: {type: OneTime, tick: 4}}
  - {type: CounterpartyWeightChange, agent: A, counterparty: C, new_weight: 0.7, schedule: {type: OneTime, tick: 6}}
  - {type: DeadlineWindowChange, max_ticks_multiplier: 2, schedule: {type: OneTime, tick: 7}}
  - {type: GlobalArrivalRateChange, multiplier: 1, schedule: {type: OneTime, tick: 10}}
`)
	four, two := 4, 2.0
	want := []sim.Event{
		{Kind: sim.CustomTransactionArrival, Tick: 2, FromAgent: "A", ToAgent: "B", Amount: 50, Priority: 5},
		{Kind: sim.CustomTransactionArrival, Tick: 1, Interval: 3, FromAgent: "B", ToAgent: "A", Amount: 60, Priority: 9, Deadline: &four, Divisible: true},
		{Kind: sim.DirectTransfer, FromAgent: "C", ToAgent: "A", Amount: 70},
		{Kind: sim.ScheduledSettlement, Tick: 5, FromAgent: "A", ToAgent: "C", Amount: 80},
		{Kind: sim.CollateralAdjustment, Tick: 3, Agent: "B", Delta: -90},
		{Kind: sim.GlobalArrivalRateChange, Tick: 4, Multiplier: 1.5},
		{Kind: sim.AgentArrivalRateChange, Tick: 4, Agent: "C", Multiplier: 0.5},
		{Kind: sim.CounterpartyWeightChange, Tick: 6, Agent: "A", Counterparty: "C", NewWeight: 0.7},
		{Kind: sim.DeadlineWindowChange, Tick: 7, MaxTicksMultiplier: &two},
		{Kind: sim.GlobalArrivalRateChange, Tick: 10, Multiplier: 1},
	}
	if !reflect.DeepEqual(cfg.Events, want) {
		t.Errorf("events:\n got %+v\nwant %+v", cfg.Events, want)
	}
	// The last event is past the run: a warning, not an error.
	if len(w) != 1 || w[0].Line != 14 || !strings.Contains(w[0].Msg, "never happens") {
		t.Errorf("warnings = %v", w)
	}
}

func TestBadScenarios(t *testing.T) {
	const sim1 = "simulation: {ticks_per_day: 10, num_days: 1, rng_seed: 1}\n"
	const ab = sim1 + "agents: [{id: A, opening_balance: 0}, {id: B, opening_balance: 0}]\n"
	cases := []struct {
		name   string
		src    string
		strict bool
		line   int
		field  string
		msg    string
	}{
		{"malformed yaml", "simulation:\n  ticks_per_day: 1\n bad: [\n", false, 2, "", "malformed YAML"},
		{"missing agents", sim1, false, 1, "agents", "required field missing"},
		{"empty agents", sim1 + "agents: []\n", false, 2, "agents", "at least one agent"},
		{"agent without id", sim1 + "agents:\n  - opening_balance: 5\n", false, 3, "agents[0].id", "required field missing"},
		{"empty id", sim1 + "agents:\n  - {id: '', opening_balance: 5}\n", false, 3, "agents[0].id", "must not be empty"},
		{"duplicate id", sim1 + "agents:\n  - {id: A, opening_balance: 0}\n  - {id: A, opening_balance: 1}\n", false, 4, "agents[1].id", `duplicate agent id "A" (first defined at line 3)`},
		{"negative cap", sim1 + "agents:\n  - {id: A, opening_balance: 0, unsecured_cap: -5}\n", false, 3, "agents[0].unsecured_cap", "must not be negative"},
		{"negative pool", sim1 + "agents:\n  - {id: A, opening_balance: 0, liquidity_pool: -5}\n", false, 3, "agents[0].liquidity_pool", "must not be negative"},
		{"fractional cents", sim1 + "agents:\n  - {id: A, opening_balance: 10.5}\n", false, 3, "agents[0].opening_balance", "integer cents"},
		{"negative event amount", ab + "scenario_events:\n  - {type: DirectTransfer, from_agent: A, to_agent: B, amount: -1, schedule: {type: OneTime, tick: 0}}\n", false, 4, "scenario_events[0].amount", "must be > 0"},
		{"ticks_per_day zero", "simulation: {ticks_per_day: 0, num_days: 1, rng_seed: 1}\nagents: [{id: A, opening_balance: 0}]\n", false, 1, "simulation.ticks_per_day", "must be > 0"},
		{"ticks_per_day text", "simulation: {ticks_per_day: ten, num_days: 1, rng_seed: 1}\nagents: [{id: A, opening_balance: 0}]\n", false, 1, "simulation.ticks_per_day", "want an integer"},
		{"unknown counterparty weight", sim1 + `agents:
  - id: A
    opening_balance: 0
    arrival_config:
      rate_per_tick: 1
      amount_distribution: {type: Uniform, min: 1, max: 2}
      counterparty_weights: {B: 1, ZED: 2}
      deadline_range: [1, 2]
  - {id: B, opening_balance: 0}
`, false, 8, "agents[0].arrival_config.counterparty_weights.ZED", `unknown counterparty "ZED" (agents: A, B)`},
		{"self weight", sim1 + `agents:
  - id: A
    opening_balance: 0
    arrival_config: {rate_per_tick: 1, amount_distribution: {type: Uniform, min: 1, max: 2}, counterparty_weights: {A: 1}, deadline_range: [1, 2]}
`, false, 5, "agents[0].arrival_config.counterparty_weights.A", "cannot pay itself"},
		{"unknown counterparty limit", sim1 + "agents:\n  - {id: A, opening_balance: 0, bilateral_limits: {Q: 5}}\n", false, 3, "agents[0].bilateral_limits.Q", `unknown counterparty "Q"`},
		{"unknown event agent", ab + "scenario_events:\n  - {type: CustomTransactionArrival, from_agent: A, to_agent: X, amount: 5, schedule: {type: OneTime, tick: 0}}\n", false, 4, "scenario_events[0].to_agent", `unknown agent "X" (agents: A, B)`},
		{"unknown event counterparty", ab + "scenario_events:\n  - {type: CounterpartyWeightChange, agent: A, counterparty: X, new_weight: 0.5, schedule: {type: OneTime, tick: 0}}\n", false, 4, "scenario_events[0].counterparty", `unknown counterparty "X"`},
		{"deadline range reversed", sim1 + `agents:
  - id: A
    opening_balance: 0
    arrival_config:
      rate_per_tick: 1
      amount_distribution: {type: Uniform, min: 1, max: 2}
      deadline_range: [9, 3]
`, false, 8, "agents[0].arrival_config.deadline_range", "reversed: max 3 < min 9"},
		{"unknown event type", ab + "scenario_events:\n  - {type: Meteor, schedule: {type: OneTime, tick: 0}}\n", false, 4, "scenario_events[0].type", `unknown event type "Meteor"; use one of AgentArrivalRateChange`},
		{"unknown distribution", sim1 + `agents:
  - id: A
    opening_balance: 0
    arrival_config: {rate_per_tick: 1, amount_distribution: {type: Pareto, alpha: 2}, deadline_range: [1, 2]}
`, false, 5, "agents[0].arrival_config.amount_distribution.type", `unknown distribution "Pareto"`},
		{"missing schedule", ab + "scenario_events:\n  - {type: GlobalArrivalRateChange, multiplier: 2}\n", false, 4, "scenario_events[0].schedule", "required field missing"},
		{"unknown policy type", sim1 + "agents:\n  - {id: A, opening_balance: 0, policy: {type: Greedy}}\n", false, 3, "agents[0].policy.type", `unknown policy type "Greedy"`},
		{"policy file not found", sim1 + "agents:\n  - {id: A, opening_balance: 0, policy: {type: FromJson, json_path: nowhere/none.json}}\n", false, 3, "agents[0].policy.json_path", `policy file "nowhere/none.json" not found; looked for nowhere/none.json, none.json in `},
		{"bad inline json", sim1 + "agents:\n  - {id: A, opening_balance: 0, policy: {type: InlineJson, json_string: '{not json'}}\n", false, 3, "agents[0].policy.json_string", "inline JSON policy is invalid"},
		{"arrival band fields", sim1 + "agents:\n  - {id: A, opening_balance: 0, arrival_bands: {urgent: {}}}\n", false, 3, "agents[0].arrival_bands.urgent.rate_per_tick", "required field missing"},
		{"categorical weights", sim1 + `agents:
  - id: A
    opening_balance: 0
    arrival_config: {rate_per_tick: 1, amount_distribution: {type: Uniform, min: 1, max: 2}, deadline_range: [1, 2], priority_distribution: {type: Categorical, values: [1, 2], weights: [1]}}
`, false, 5, "agents[0].arrival_config.priority_distribution.weights", "one weight per value"},
		{"repeating end tick", ab + "scenario_events:\n  - {type: GlobalArrivalRateChange, multiplier: 2, schedule: {type: Repeating, start_tick: 0, interval: 2, end_tick: 6}}\n", false, 4, "scenario_events[0].schedule.end_tick", "not implemented"},
		{"feature toggles", sim1 + "agents: [{id: A, opening_balance: 0, policy: {type: InlineJson, json_string: '{\"payment_tree\":{\"type\":\"action\",\"node_id\":\"S\",\"action\":\"Split\",\"parameters\":{\"num_splits\":{\"value\":2}}}}'}}]\npolicy_feature_toggles: {exclude: [PaymentAction]}\n", false, 3, "policy_feature_toggles", "policy_feature_toggles forbids"},
		{"feature toggle name", sim1 + "agents: [{id: A, opening_balance: 0}]\npolicy_feature_toggles: {exclude: [Magic]}\n", false, 3, "policy_feature_toggles.exclude[0]", "unknown category"},
		{"eod rush threshold", sim1 + "agents: [{id: A, opening_balance: 0}]\neod_rush_threshold: 1.5\n", false, 3, "eod_rush_threshold", "fraction of the day"},
		{"both eod penalties", sim1 + "agents: [{id: A, opening_balance: 0}]\ncost_rates: {eod_penalty: 1, eod_penalty_per_transaction: 2}\n", false, 3, "cost_rates.eod_penalty", "give only one"},
		{"penalty mode", sim1 + "agents: [{id: A, opening_balance: 0}]\ncost_rates: {deadline_penalty: {mode: hourly}}\n", false, 3, "cost_rates.deadline_penalty.mode", `unknown penalty mode "hourly"`},
		{"priority out of range", ab + "scenario_events:\n  - {type: CustomTransactionArrival, from_agent: A, to_agent: B, amount: 5, priority: 11, schedule: {type: OneTime, tick: 0}}\n", false, 4, "scenario_events[0].priority", "between 0 and 10"},
		{"haircut out of range", sim1 + "agents:\n  - {id: A, opening_balance: 0, collateral_haircut: 1.5}\n", false, 3, "agents[0].collateral_haircut", "between 0 and 1"},
		{"strict unknown key", sim1 + "agents:\n  - {id: A, opening_balance: 0, colour: blue}\n", true, 3, "agents[0].colour", "unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, err := loadString(t, c.src, Options{Strict: c.strict})
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("config returned with an error")
			}
			var ye *yamlfile.Error
			if !errors.As(err, &ye) {
				t.Fatalf("error %T is not a *yamlfile.Error: %v", err, err)
			}
			if ye.File != "s.yaml" || ye.Line != c.line || ye.Field != c.field || !strings.Contains(ye.Msg, c.msg) {
				t.Errorf("got  %v\nwant s.yaml:%d: %s: ...%s...", err, c.line, c.field, c.msg)
			}
		})
	}
}

// TestBadFiles loads the files under testdata/scenarios/bad through Load,
// so the message names the real path.
func TestBadFiles(t *testing.T) {
	cases := []struct {
		file, want string
	}{
		{"duplicate_agent.yaml", "duplicate_agent.yaml:12:9: agents[1].id: duplicate agent id \"BANK_A\" (first defined at line 9)"},
		{"missing_policy_file.yaml", "missing_policy_file.yaml:11:18: agents[0].policy.json_path: policy file \"policies/does_not_exist.json\" not found"},
	}
	for _, c := range cases {
		path := filepath.Join(testdata, "bad", c.file)
		_, _, err := Load(path, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("%s: error = %v\nwant it to contain %q", c.file, err, c.want)
		}
	}
	if _, _, err := Load(filepath.Join(testdata, "bad", "absent.yaml"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

func TestStrictAndWarnings(t *testing.T) {
	src := minimal + "extra_top: 1\n"
	_, w, err := loadString(t, src, Options{})
	if err != nil || len(w) != 1 || w[0].Field != "extra_top" || w[0].Line != 13 {
		t.Fatalf("lenient: err %v warnings %v", err, w)
	}
	if _, _, err := loadString(t, src, Options{Strict: true}); err == nil || !strings.Contains(err.Error(), "s.yaml:13:1: extra_top: unknown key") {
		t.Errorf("strict: %v", err)
	}
}
