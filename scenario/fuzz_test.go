package scenario

import (
	"os"
	"path/filepath"
	"testing"

	"simcash/sim"
)

// FuzzLoadBytes feeds arbitrary bytes to the scenario loader: it must
// return a config or an error, never panic, and a config it accepts must
// build an engine and (when small) run a few ticks.
func FuzzLoadBytes(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "scenarios", "*.yaml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("ticks_per_day: 3\nnum_days: 1\nagents:\n  - id: A\n    opening_balance: 10\n    arrival_config: {rate_per_tick: 1e12}\n"))
	f.Add([]byte("num_days: 9223372036854775807\n"))
	f.Add([]byte("\x00\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := LoadBytes(filepath.Join(t.TempDir(), "fuzz.yaml"), data, Options{})
		if err != nil {
			if cfg != nil {
				t.Fatal("LoadBytes returned a config with an error")
			}
			return
		}
		s, err := sim.New(cfg, sim.WithTicks(3))
		if err != nil {
			return
		}
		if small(cfg) {
			s.Run()
		}
	})
}

// small bounds the work of running a fuzzed scenario for three ticks.
func small(cfg *sim.Config) bool {
	if len(cfg.Agents) > 20 {
		return false
	}
	rate := 0.0
	for _, a := range cfg.Agents {
		if a.Arrivals != nil {
			rate += a.Arrivals.RatePerTick
		}
		if b := a.Bands; b != nil {
			for _, band := range []*sim.ArrivalBand{b.Urgent, b.Normal, b.Low} {
				if band != nil {
					rate += band.RatePerTick
				}
			}
		}
	}
	return rate < 1000
}
