package scenario

import (
	"path/filepath"
	"testing"

	"simcash/sim"
)

// runFile loads one of our testdata scenarios, sets each agent's
// initial_liquidity_fraction if fractions are given, and runs it.
func runFile(t *testing.T, name string, fractions map[string]float64, edit func(*sim.Config)) *sim.Result {
	t.Helper()
	cfg, w := mustLoad(t, filepath.Join(testdata, name))
	if len(w) != 0 {
		t.Errorf("%s: warnings %v", name, w)
	}
	for i := range cfg.Agents {
		a := &cfg.Agents[i]
		if f, ok := fractions[a.ID]; ok {
			p, err := a.Policy.WithParams(map[string]float64{"initial_liquidity_fraction": f})
			if err != nil {
				t.Fatal(err)
			}
			a.UsePolicy(p)
		}
	}
	if edit != nil {
		edit(cfg)
	}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatalf("sim.New(%s): %v", name, err)
	}
	return s.Run()
}

// TestOwnCastroScenariosRun checks our scenario files against the spec's
// published numbers, through the real engine.
func TestOwnCastroScenariosRun(t *testing.T) {
	cases := []struct {
		file         string
		fa, fb       float64
		costA, costB int64
	}{
		{"exp1.yaml", 0.0, 0.2, 0, 2000},
		{"exp1.yaml", 0.5, 0.5, 5000, 5000},
		{"exp2.yaml", 0.5, 0.5, 49800, 49800},
	}
	for _, c := range cases {
		r := runFile(t, c.file, map[string]float64{"BANK_A": c.fa, "BANK_B": c.fb}, nil)
		a, b := r.Agent("BANK_A"), r.Agent("BANK_B")
		if a.Costs.Total() != c.costA || b.Costs.Total() != c.costB {
			t.Errorf("%s (%v, %v): costs %d/%d, want %d/%d", c.file, c.fa, c.fb, a.Costs.Total(), b.Costs.Total(), c.costA, c.costB)
		}
		if c.file == "exp2.yaml" && (a.Arrivals != 25 || b.Arrivals != 28) {
			t.Errorf("exp2 arrivals %d/%d, want 25/28", a.Arrivals, b.Arrivals)
		}
	}
	// exp3 has no published figure; it must run and settle all four payments
	// when both banks take their whole pool.
	r := runFile(t, "exp3.yaml", map[string]float64{"BANK_A": 1, "BANK_B": 1}, nil)
	if s := r.Agent("BANK_A").Settled + r.Agent("BANK_B").Settled; s != 4 {
		t.Errorf("exp3 settled %d, want 4", s)
	}
}

// TestLSMRing: the ring settles only when the cycle algorithm is on.
func TestLSMRing(t *testing.T) {
	cases := []struct {
		name      string
		bilateral bool
		cycles    bool
		settled   int
	}{
		{"cycles on", true, true, 3},
		{"bilateral only", true, false, 0},
		{"no LSM", false, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runFile(t, "lsm_ring.yaml", nil, func(cfg *sim.Config) {
				cfg.LSM.EnableBilateral, cfg.LSM.EnableCycles = c.bilateral, c.cycles
			})
			settled := 0
			for _, a := range r.Agents {
				settled += a.Settled
				if c.settled == 3 && a.FinalBalance != 10000 {
					t.Errorf("%s final balance %d, want 10000 (net zero ring)", a.ID, a.FinalBalance)
				}
			}
			if settled != c.settled {
				t.Errorf("settled %d, want %d", settled, c.settled)
			}
		})
	}
}
