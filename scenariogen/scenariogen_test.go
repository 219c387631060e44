package scenariogen_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"simcash/scenario"
	"simcash/scenariogen"
	"simcash/sim"
)

// Every generated scenario loads without error or warning and runs; the
// same seed gives the same file; across seeds every feature appears.
func TestGenerated(t *testing.T) {
	dir := t.TempDir()
	features := map[string]int{}
	keys := []string{"arrival_bands", "Categorical", "LogNormal", "Exponential", "Normal", "deferred_crediting: true",
		"deadline_cap_at_eod: true", "priority_mode: true", "queue1_ordering", "priority_escalation", "eod_rush_threshold",
		"bilateral_limits", "multilateral_limit", "liquidity_pool", "posted_collateral", "Repeating", "OneTime",
		"CustomTransactionArrival", "DirectTransfer", "ScheduledSettlement", "CollateralAdjustment", "GlobalArrivalRateChange",
		"AgentArrivalRateChange", "CounterpartyWeightChange", "DeadlineWindowChange", "LiquiditySplitting", "MockSplitting",
		"Deadline", "LiquidityAware", "Fifo", "mode: rate", "divisible: true", "algorithm_sequencing", "entry_disposition_offsetting"}
	for seed := uint64(1); seed <= 200; seed++ {
		y := scenariogen.Generate(seed, scenariogen.Options{})
		if !bytes.Equal(y, scenariogen.Generate(seed, scenariogen.Options{})) {
			t.Fatalf("seed %d: two different scenarios", seed)
		}
		for _, k := range keys {
			if strings.Contains(string(y), k) {
				features[k]++
			}
		}
		f := filepath.Join(dir, "s.yaml")
		if err := os.WriteFile(f, y, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, warns, err := scenario.Load(f, scenario.Options{Strict: true})
		if err != nil || len(warns) > 0 {
			t.Fatalf("seed %d: %v %v\n%s", seed, err, warns, y)
		}
		if n := len(cfg.Agents); n < 2 || n > 12 {
			t.Errorf("seed %d: %d agents", seed, n)
		}
		s, err := sim.New(cfg)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		s.Run()
	}
	for _, k := range keys {
		if features[k] == 0 {
			t.Errorf("no scenario in 200 has %s", k)
		}
	}
}
