package sim

import (
	"fmt"
	"testing"
)

// BenchmarkCastroExp2Day runs the Castro exp2 scenario (one 12-tick day) per
// op. Target: <= 10 µs per simulated day.
func BenchmarkCastroExp2Day(b *testing.B) {
	cfg := exp2Config(b, 0.5, 0.5)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		s.Run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/day")
}

// bootstrapConfig is a three-party sandbox day of 12 ticks: SOURCE (with
// practically unlimited credit) pays AGENT, AGENT (pool, release-all) pays
// SINK; 25 payments each way at varied ticks, with deadlines. Every agent
// has its policy resolved, as the scenario loader delivers it (a nil policy
// makes New parse the builtin Fifo document for every Sim).
func bootstrapConfig(tb testing.TB) *Config {
	fifo := releaseAll(tb, 1)
	c := &Config{
		TicksPerDay: 12, NumDays: 1, Seed: 42, DeferredCrediting: true, DeadlineCapAtEOD: true,
		Costs: castroCosts(),
		Agents: []AgentConfig{
			{ID: "SOURCE", UnsecuredCap: 1 << 40, Policy: fifo},
			{ID: "AGENT", LiquidityPool: 1000000, Policy: releaseAll(tb, 0.3), LiquidityAllocationFraction: ptrF(0.3)},
			{ID: "SINK", Policy: fifo},
		},
	}
	c.Costs.LiquidityCostPerTickBps = 83
	r := NewRNG(5) // only to spread ticks and amounts deterministically
	for i := 0; i < 25; i++ {
		for _, pair := range [][2]string{{"SOURCE", "AGENT"}, {"AGENT", "SINK"}} {
			c.Events = append(c.Events, Event{
				Kind: CustomTransactionArrival, Tick: int(r.Range(0, 12)), FromAgent: pair[0], ToAgent: pair[1],
				Amount: r.Range(5000, 50001), Priority: 5, Deadline: intp(int(r.Range(2, 9))),
			})
		}
	}
	return c
}

// BenchmarkBootstrap50 runs 50 sandbox days per op, as the bootstrap
// evaluator does. Target: <= 1 ms per 50 days.
func BenchmarkBootstrap50(b *testing.B) {
	cfg := bootstrapConfig(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 50; k++ {
			s, err := New(cfg, WithoutBalanceHistory())
			if err != nil {
				b.Fatal(err)
			}
			s.Run()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/50days")
}

// networkConfig is n agents each sending Poisson(2) payments a tick with
// uniform amounts to uniformly drawn counterparties, LSM bilateral and cycles
// on, and enough balance and credit that most payments settle (99.9% over
// 200 agents and 10 days of 100 ticks) while Q2 still gives the LSM work.
func networkConfig(tb testing.TB, n, tpd, days int) *Config {
	c := &Config{
		TicksPerDay: tpd, NumDays: days, Seed: 12345, Costs: DefaultCostRates(),
		LSM: LSMConfig{EnableBilateral: true, EnableCycles: true, MaxCycleLength: 4, MaxCyclesPerTick: 10},
	}
	for i := 0; i < n; i++ {
		c.Agents = append(c.Agents, AgentConfig{
			ID: fmt.Sprintf("BANK%03d", i), OpeningBalance: 300000, UnsecuredCap: 150000, CollateralHaircut: 0.02,
			Arrivals: &ArrivalConfig{RatePerTick: 2, Amount: Distribution{Kind: Uniform, Min: 1000, Max: 10000},
				DeadlineMin: 5, DeadlineMax: 20, Priority: 5},
		})
	}
	return c
}

// BenchmarkLargeNetwork: 200 agents, 100 ticks a day, 10 days per op.
// Aim: >= 10,000 ticks/s.
func BenchmarkLargeNetwork(b *testing.B) {
	cfg := networkConfig(b, 200, 100, 10)
	ticks := cfg.TicksPerDay * cfg.NumDays
	settled, arrivals := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := New(cfg, WithoutBalanceHistory())
		if err != nil {
			b.Fatal(err)
		}
		r := s.Run()
		for _, a := range r.Agents {
			settled += a.Settled
			arrivals += a.Arrivals
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(ticks*b.N)/sec, "ticks/s")
	b.ReportMetric(float64(settled)/sec, "settled/s")
	b.ReportMetric(float64(settled)/float64(arrivals), "settled/arrived")
}
