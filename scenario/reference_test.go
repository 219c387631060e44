package scenario

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"simcash/sim"
)

// refDir is SimCash's reference files beside the project.
const refDir = "../../shared/simcash"

func needRef(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(refDir); err != nil {
		t.Skipf("reference files not present at %s: %v", refDir, err)
	}
}

func mustLoad(t *testing.T, path string) (*sim.Config, []Warning) {
	t.Helper()
	cfg, w, err := Load(path, Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return cfg, w
}

func agent(t *testing.T, cfg *sim.Config, id string) *sim.AgentConfig {
	t.Helper()
	for i := range cfg.Agents {
		if cfg.Agents[i].ID == id {
			return &cfg.Agents[i]
		}
	}
	t.Fatalf("agent %s not found", id)
	return nil
}

func param(t *testing.T, a *sim.AgentConfig, name string) float64 {
	t.Helper()
	if a.Policy == nil {
		t.Fatalf("agent %s has no policy", a.ID)
	}
	v, ok := a.Policy.Param(name)
	if !ok {
		t.Fatalf("agent %s: policy has no parameter %s", a.ID, name)
	}
	return v
}

func countKind(cfg *sim.Config, k sim.EventKind) int {
	n := 0
	for _, e := range cfg.Events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func castroCosts(liqBps float64) sim.CostRates {
	c := sim.DefaultCostRates()
	c.LiquidityCostPerTickBps = liqBps
	c.DelayCostPerTickPerCent = 0.2
	c.OverdraftBpsPerTick = 0
	c.CollateralCostPerTickBps = 0
	c.EODPenaltyPerTransaction = sim.Penalty{Amount: 100000}
	c.DeadlinePenalty = sim.Penalty{Amount: 50000}
	c.SplitFrictionCost = 0
	return c
}

// TestReferenceScenarios loads every SimCash scenario and checks a few
// resolved values per file.
func TestReferenceScenarios(t *testing.T) {
	needRef(t)
	checks := map[string]func(t *testing.T, cfg *sim.Config, w []Warning){
		"castro/configs/exp1_2period.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			if cfg.TicksPerDay != 2 || cfg.NumDays != 1 || cfg.Seed != 42 || !cfg.DeferredCrediting || !cfg.DeadlineCapAtEOD {
				t.Errorf("simulation = %d/%d/%d deferred=%v cap=%v", cfg.TicksPerDay, cfg.NumDays, cfg.Seed, cfg.DeferredCrediting, cfg.DeadlineCapAtEOD)
			}
			if !reflect.DeepEqual(cfg.Costs, castroCosts(500)) {
				t.Errorf("costs = %+v", cfg.Costs)
			}
			if cfg.LSM.EnableBilateral || cfg.LSM.EnableCycles {
				t.Errorf("LSM = %+v, want off", cfg.LSM)
			}
			if len(cfg.Events) != 3 || countKind(cfg, sim.CustomTransactionArrival) != 3 {
				t.Fatalf("events = %d", len(cfg.Events))
			}
			e := cfg.Events[1] // B -> A 15000 at tick 0
			if e.FromAgent != "BANK_B" || e.ToAgent != "BANK_A" || e.Amount != 15000 || e.Tick != 0 || e.Deadline == nil || *e.Deadline != 2 || e.Priority != 5 {
				t.Errorf("event[1] = %+v", e)
			}
			a := agent(t, cfg, "BANK_A")
			if a.LiquidityPool != 100000 || a.OpeningBalance != 0 || a.UnsecuredCap != 0 || a.Arrivals != nil {
				t.Errorf("BANK_A = %+v", a)
			}
		},
		"castro/configs/exp2_12period.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			if !reflect.DeepEqual(cfg.Costs, castroCosts(83)) {
				t.Errorf("costs = %+v", cfg.Costs)
			}
			if len(cfg.Events) != 0 {
				t.Errorf("events = %d", len(cfg.Events))
			}
			a := agent(t, cfg, "BANK_A")
			if a.LiquidityPool != 1000000 {
				t.Errorf("pool = %d", a.LiquidityPool)
			}
			ac := a.Arrivals
			want := &sim.ArrivalConfig{
				RatePerTick:         2,
				Amount:              sim.Distribution{Kind: sim.LogNormal, Mean: 10000, StdDev: 5000},
				CounterpartyWeights: map[string]float64{"BANK_B": 1},
				DeadlineMin:         3, DeadlineMax: 8, Priority: 5,
			}
			if !reflect.DeepEqual(ac, want) {
				t.Errorf("arrivals = %+v, want %+v", ac, want)
			}
		},
		"castro/configs/exp3_joint.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			if cfg.TicksPerDay != 3 || cfg.Costs.LiquidityCostPerTickBps != 333 || len(cfg.Events) != 4 {
				t.Errorf("ticks %d bps %v events %d", cfg.TicksPerDay, cfg.Costs.LiquidityCostPerTickBps, len(cfg.Events))
			}
		},
		"examples/advanced_policy_crisis.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			if len(cfg.Agents) != 4 || len(cfg.Events) != 21 {
				t.Errorf("agents %d events %d", len(cfg.Agents), len(cfg.Events))
			}
			m := agent(t, cfg, "METRO_CENTRAL")
			// params override the file's eod_threshold 0.8.
			if param(t, m, "eod_threshold") != 0.5 || param(t, m, "buffer_multiplier") != 2.5 || param(t, m, "initial_liquidity_fraction") != 0.7 {
				t.Errorf("METRO_CENTRAL params = %v", m.Policy.Params())
			}
			if m.Arrivals.Priority != 6 || m.Arrivals.Amount.Kind != sim.LogNormal || m.Arrivals.Amount.Mean != 10.5 {
				t.Errorf("METRO_CENTRAL arrivals = %+v", m.Arrivals)
			}
			if r := agent(t, cfg, "REGIONAL_TRUST"); !r.Arrivals.Divisible || r.Arrivals.Amount != (sim.Distribution{Kind: sim.Uniform, Min: 50000, Max: 400000}) {
				t.Errorf("REGIONAL_TRUST arrivals = %+v", r.Arrivals)
			}
			if got := countKind(cfg, sim.CollateralAdjustment); got != 6 {
				t.Errorf("collateral adjustments = %d", got)
			}
			if e := cfg.Events[0]; e.Kind != sim.GlobalArrivalRateChange || e.Multiplier != 1.5 || e.Tick != 105 {
				t.Errorf("event[0] = %+v", e)
			}
			if c := cfg.Costs; c.EODPenaltyPerTransaction.Amount != 500000 || c.SplitFrictionCost != 7500 || c.CollateralCostPerTickBps != 0.0005 {
				t.Errorf("costs = %+v", c)
			}
		},
		"examples/suboptimal_policies_10day.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			if cfg.NumDays != 10 || len(cfg.Events) != 24 {
				t.Errorf("days %d events %d", cfg.NumDays, len(cfg.Events))
			}
			if v := param(t, agent(t, cfg, "CONSERVATIVE_BANK"), "buffer_multiplier"); v != 3.5 {
				t.Errorf("CONSERVATIVE_BANK buffer_multiplier = %v", v)
			}
		},
		"examples/target2_crisis_25day.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			if !cfg.AlgorithmSequencing || !cfg.EntryDispositionOffsetting {
				t.Errorf("T2 toggles off")
			}
			if want := (sim.PriorityEscalation{Enabled: true, StartEscalatingAtTicks: 20, MaxBoost: 4}); cfg.PriorityEscalation != want {
				t.Errorf("escalation = %+v", cfg.PriorityEscalation)
			}
			a := agent(t, cfg, "BIG_BANK_A")
			if a.BilateralLimits["SMALL_BANK_B"] != 5000000 || len(a.BilateralLimits) != 3 || a.MultilateralLimit == nil || *a.MultilateralLimit != 12000000 {
				t.Errorf("BIG_BANK_A limits = %v / %v", a.BilateralLimits, a.MultilateralLimit)
			}
			if cfg.LSM.MaxCyclesPerTick != 20 || len(cfg.Events) != 70 {
				t.Errorf("lsm %+v events %d", cfg.LSM, len(cfg.Events))
			}
		},
		"examples/target2_crisis_25day_bad_policy.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			// SMALL_BANK_A runs the same policy file as BIG_BANK_B here.
			if !bytes.Equal(agent(t, cfg, "SMALL_BANK_A").Policy.JSON(), agent(t, cfg, "BIG_BANK_B").Policy.JSON()) {
				t.Errorf("SMALL_BANK_A should run target2_limit_aware.json")
			}
		},
		"examples/test_minimal_eod.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			want := []string{
				"simulation.lsm_enabled", "simulation.lsm_frequency_ticks",
				"agents[0].overdraft_rate", "agents[0].delay_cost_per_tick",
				"agents[1].overdraft_rate", "agents[1].delay_cost_per_tick",
			}
			var got []string
			for _, x := range w {
				got = append(got, x.Field)
				if x.Line == 0 || x.File == "" {
					t.Errorf("warning without place: %v", x)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("warnings = %v, want %v", got, want)
			}
			// lsm_enabled is not mapped; SimCash's defaults keep the LSM on.
			if !cfg.LSM.EnableBilateral || !cfg.LSM.EnableCycles || cfg.LSM.MaxCycleLength != 4 || cfg.LSM.MaxCyclesPerTick != 10 {
				t.Errorf("LSM = %+v", cfg.LSM)
			}
			if !reflect.DeepEqual(cfg.Costs, sim.DefaultCostRates()) {
				t.Errorf("costs = %+v, want defaults", cfg.Costs)
			}
			a := agent(t, cfg, "BANK_A")
			if a.UnsecuredCap != 500000 || a.MaxCollateralCapacity != 5000000 || a.CollateralHaircut != 0.02 {
				t.Errorf("BANK_A = %+v", a)
			}
			if ac := a.Arrivals; ac.Amount != (sim.Distribution{Kind: sim.Uniform, Min: 10000, Max: 50000}) || ac.DeadlineMin != 30 || ac.DeadlineMax != 70 {
				t.Errorf("arrivals = %+v", ac)
			}
		},
		"examples/test_near_deadline.yaml": func(t *testing.T, cfg *sim.Config, w []Warning) {
			var got []string
			for _, x := range w {
				got = append(got, x.Field)
			}
			want := []string{"cost_model", "simulation.lsm_enabled", "simulation.lsm_frequency_ticks"}
			if !slices.Equal(got, want) {
				t.Errorf("warnings = %v, want %v", got, want)
			}
		},
	}

	// Every scenario file must load, including ones added later.
	files, _ := filepath.Glob(filepath.Join(refDir, "examples", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(refDir, "castro", "configs", "*.yaml"))
	files = append(files, more...)
	if len(files) < len(checks) {
		t.Fatalf("found %d reference scenarios, want at least %d", len(files), len(checks))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(refDir, f)
		t.Run(rel, func(t *testing.T) {
			cfg, w := mustLoad(t, f)
			if len(cfg.Agents) == 0 {
				t.Fatal("no agents")
			}
			for _, a := range cfg.Agents {
				if a.Policy == nil {
					t.Errorf("agent %s: nil policy", a.ID)
				}
			}
			if check, ok := checks[filepath.ToSlash(rel)]; ok {
				check(t, cfg, w)
			} else {
				t.Logf("no value checks for %s", rel)
			}
		})
	}
}

// TestOwnCastroScenariosMatchReference: our testdata copies of the Castro
// scenarios are reworded, not copied, but resolve to the same Config.
func TestOwnCastroScenariosMatchReference(t *testing.T) {
	needRef(t)
	pairs := []struct{ ours, ref string }{
		{"exp1.yaml", "castro/configs/exp1_2period.yaml"},
		{"exp2.yaml", "castro/configs/exp2_12period.yaml"},
		{"exp3.yaml", "castro/configs/exp3_joint.yaml"},
	}
	for _, p := range pairs {
		t.Run(p.ours, func(t *testing.T) {
			oursPath := filepath.Join(testdata, p.ours)
			refPath := filepath.Join(refDir, p.ref)
			a, _ := mustLoad(t, oursPath)
			b, _ := mustLoad(t, refPath)
			if len(a.Agents) != len(b.Agents) {
				t.Fatalf("agents %d vs %d", len(a.Agents), len(b.Agents))
			}
			for i := range a.Agents {
				if !bytes.Equal(a.Agents[i].Policy.JSON(), b.Agents[i].Policy.JSON()) {
					t.Errorf("agent %d policy differs", i)
				}
				a.Agents[i].Policy, b.Agents[i].Policy = nil, nil
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("configs differ:\nours %+v\nref  %+v", a, b)
			}
			x, _ := os.ReadFile(oursPath)
			y, _ := os.ReadFile(refPath)
			if bytes.Equal(x, y) {
				t.Errorf("%s is a byte copy of the reference file", p.ours)
			}
		})
	}
}
