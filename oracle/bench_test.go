package oracle_test

import (
	"path/filepath"
	"testing"

	"simcash/oracle"
	"simcash/scenario"
	"simcash/sim"
)

// BenchmarkVersusSimCash times our engine and SimCash's (simcash-oracle
// --repeat, in-process, after a warm-up) on the same scenario in one run
// and reports the ratio. Both time Orchestrator/Sim construction plus
// every tick; neither times YAML parsing.
//
//	SIMCASH_ORACLE=/tmp/simcash-oracle/simcash-oracle go test -run '^$' -bench VersusSimCash ./oracle
func BenchmarkVersusSimCash(b *testing.B) {
	o, why := oracle.Find(".")
	if o == nil {
		b.Skip("skipped: " + why)
	}
	for _, bc := range []struct {
		name, file string
		repeat     int // SimCash runs to average over
	}{
		{"exp2_day", filepath.Join("..", "testdata", "scenarios", "exp2.yaml"), 2000},
		{"network50_lsm", filepath.Join("testdata", "network50.yaml"), 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg, _, err := scenario.Load(bc.file, scenario.Options{})
			if err != nil {
				b.Fatal(err)
			}
			theirs, err := o.Time(b.Context(), bc.file, bc.repeat)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				s, err := sim.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				s.Run()
			}
			ours := float64(b.Elapsed().Microseconds()) / float64(b.N)
			b.ReportMetric(theirs.MeanUS, "simcash-µs/run")
			b.ReportMetric(ours, "ours-µs/run")
			b.ReportMetric(theirs.MeanUS/ours, "x-faster")
		})
	}
}
