package sim

import (
	"math"
	"testing"
)

func TestRNGFirstOutputsSeed42(t *testing.T) {
	// xorshift64* seeded 42, computed independently (Python, wrapping uint64).
	want := []uint64{6255019084209693600, 14430073426741505498, 14575455857230217846, 17414512882241728735, 14100574548354140678}
	r := NewRNG(42)
	for i, w := range want {
		if got := r.Next(); got != w {
			t.Fatalf("output %d: got %d, want %d", i, got, w)
		}
	}
}

func TestRNGSeedZeroIsSeedOne(t *testing.T) {
	r0, r1 := NewRNG(0), NewRNG(1)
	// seed 1: x = 1 ^ 1<<25 = 33554433 (x>>12 and x>>27 are 0);
	// 33554433 * 0x2545F4914F6CDD1D mod 2^64 = 5180492295206395165.
	if got := r1.Next(); got != 5180492295206395165 {
		t.Fatalf("seed 1 first output %d, want 5180492295206395165", got)
	}
	r1 = NewRNG(1)
	for i := 0; i < 100; i++ {
		if a, b := r0.Next(), r1.Next(); a != b {
			t.Fatalf("output %d: seed 0 gives %d, seed 1 gives %d", i, a, b)
		}
	}
}

func TestRNGRangeAndFloat(t *testing.T) {
	ref := NewRNG(42)
	r := NewRNG(42)
	// range(a,b) = a + next % (b-a): 6255019084209693600 % 10 = 0, so range(5,15) = 5.
	if got := r.Range(5, 15); got != 5 {
		t.Fatalf("Range(5,15) = %d, want 5", got)
	}
	ref.Next()
	// 14430073426741505498 % 7 = 0, so range(-3,4) = -3.
	if got := r.Range(-3, 4); got != -3 {
		t.Fatalf("Range(-3,4) = %d, want -3", got)
	}
	ref.Next()
	// float = (next>>11) * 2^-53.
	if got, want := r.Float(), float64(ref.Next()>>11)/(1<<53); got != want {
		t.Fatalf("Float = %v, want %v", got, want)
	}
	// A width-one range always returns its lower bound but still draws.
	if got := r.Range(7, 8); got != 7 {
		t.Fatalf("Range(7,8) = %d", got)
	}
	ref.Next()
	if r.Next() != ref.Next() {
		t.Fatal("Range(7,8) did not draw exactly once")
	}
	for i := 0; i < 10000; i++ {
		if v := r.Range(-2, 3); v < -2 || v >= 3 {
			t.Fatalf("Range(-2,3) = %d out of [-2,3)", v)
		}
		if f := r.Float(); f < 0 || f >= 1 {
			t.Fatalf("Float = %v out of [0,1)", f)
		}
	}
}

func TestRNGPoisson(t *testing.T) {
	// lambda <= 0 returns 0 and draws nothing: the next output is the first.
	for _, lambda := range []float64{0, -1} {
		r := NewRNG(42)
		if k := r.Poisson(lambda); k != 0 {
			t.Errorf("Poisson(%v) = %d, want 0", lambda, k)
		}
		if got := r.Next(); got != 6255019084209693600 {
			t.Errorf("Poisson(%v) drew from the generator", lambda)
		}
	}
	// Knuth's method by hand on a twin generator: k+1 floats for a result of k.
	r, ref := NewRNG(7), NewRNG(7)
	for i := 0; i < 1000; i++ {
		k := r.Poisson(2)
		l, n, p := math.Exp(-2), 0, 1.0
		for {
			n++
			p *= ref.Float()
			if p <= l {
				break
			}
		}
		if k != n-1 {
			t.Fatalf("draw %d: Poisson(2) = %d, hand-rolled Knuth = %d", i, k, n-1)
		}
	}
	if r.Next() != ref.Next() {
		t.Fatal("Poisson consumed a different number of draws than Knuth's method")
	}
	// Mean sanity: 100000 draws of Poisson(2) average 2 within 0.03 (sd of mean ~0.0045).
	sum := 0
	for i := 0; i < 100000; i++ {
		sum += r.Poisson(2)
	}
	if mean := float64(sum) / 100000; math.Abs(mean-2) > 0.03 {
		t.Fatalf("Poisson(2) mean %v, want ~2", mean)
	}
}

func TestRNGSampleUniformBounds(t *testing.T) {
	r := NewRNG(3)
	d := Distribution{Kind: Uniform, Min: 100, Max: 102}
	seen := map[int64]bool{}
	for i := 0; i < 1000; i++ {
		v := r.Sample(&d)
		if v < 100 || v > 102 {
			t.Fatalf("Uniform{100,102} gave %d", v)
		}
		seen[v] = true
	}
	// range(min, max+1) makes the maximum reachable.
	if len(seen) != 3 {
		t.Fatalf("Uniform{100,102} reached %v, want all of 100..102", seen)
	}
}

// Sample's formulas, recomputed from a twin generator's raw draws.
func TestRNGSampleFormulas(t *testing.T) {
	normal := func(r *RNG) float64 {
		u1, u2 := r.Float(), r.Float()
		return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
	}
	cases := []struct {
		name string
		d    Distribution
		hand func(r *RNG) int64
	}{
		{"normal", Distribution{Kind: Normal, Mean: 10000, StdDev: 3000}, func(r *RNG) int64 {
			return max(1, int64(math.Round(10000+3000*normal(r))))
		}},
		// mean 1 sd 5: most draws round below 1 and are raised to 1
		{"normal at least 1", Distribution{Kind: Normal, Mean: 1, StdDev: 5}, func(r *RNG) int64 {
			return max(1, int64(math.Round(1+5*normal(r))))
		}},
		{"lognormal moments of the amount", Distribution{Kind: LogNormal, Mean: 10000, StdDev: 5000}, func(r *RNG) int64 {
			s2 := math.Log(1 + 5000.0*5000/(10000*10000)) // ln(1.25)
			mu := math.Log(10000) - s2/2
			return max(1, int64(math.Round(math.Exp(mu+math.Sqrt(s2)*normal(r)))))
		}},
		{"exponential", Distribution{Kind: Exponential, Lambda: 0.001}, func(r *RNG) int64 {
			return int64(math.Round(-math.Log(r.Float()) / 0.001))
		}},
	}
	for _, tc := range cases {
		r, ref := NewRNG(11), NewRNG(11)
		ones := 0
		for i := 0; i < 2000; i++ {
			got, want := r.Sample(&tc.d), tc.hand(ref)
			if got != want {
				t.Fatalf("%s draw %d: %d, want %d", tc.name, i, got, want)
			}
			if got == 1 {
				ones++
			}
		}
		if tc.name == "normal at least 1" && ones < 500 {
			t.Errorf("normal(1,5): %d of 2000 draws raised to 1, want many", ones)
		}
	}
	// LogNormal{10000, 5000} has mean 10000: 20000 draws average within 2%.
	r, d, sum := NewRNG(5), Distribution{Kind: LogNormal, Mean: 10000, StdDev: 5000}, int64(0)
	for i := 0; i < 20000; i++ {
		sum += r.Sample(&d)
	}
	if mean := float64(sum) / 20000; math.Abs(mean-10000) > 200 {
		t.Errorf("LogNormal{10000,5000} sample mean %v, want ~10000", mean)
	}
}
