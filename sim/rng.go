package sim

import "math"

// RNG is the reference simulator's xorshift64* generator. Only arrival
// generation draws from it, in a fixed order, so runs are reproducible bit
// for bit across implementations.
type RNG struct{ state uint64 }

// NewRNG seeds the generator; a seed of 0 becomes 1 (xorshift never leaves 0).
func NewRNG(seed uint64) *RNG {
	if seed == 0 {
		seed = 1
	}
	return &RNG{state: seed}
}

// Next returns the next 64-bit output.
func (r *RNG) Next() uint64 {
	x := r.state
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	r.state = x
	return x * 0x2545F4914F6CDD1D
}

// Range returns a + Next() % (b-a); it requires b > a.
func (r *RNG) Range(a, b int64) int64 {
	return a + int64(r.Next()%uint64(b-a))
}

// Float returns a uniform float in [0, 1) from the top 53 bits.
func (r *RNG) Float() float64 {
	return float64(r.Next()>>11) * (1.0 / (1 << 53))
}

// Poisson draws with Knuth's method; lambda <= 0 draws nothing.
func (r *RNG) Poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	return r.poissonL(math.Exp(-lambda))
}

// poissonL is Poisson with L = exp(-lambda) precomputed by the caller.
func (r *RNG) poissonL(l float64) int {
	k, p := 0, 1.0
	for {
		k++
		p *= r.Float()
		if p <= l {
			return k - 1
		}
	}
}

// normal is Box-Muller from two draws; the second normal is discarded.
func (r *RNG) normal() float64 {
	u1 := r.Float()
	u2 := r.Float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// roundHalfAway rounds half away from zero (Rust's f64::round).
func roundHalfAway(x float64) float64 { return math.Round(x) }

// Sample draws an amount in cents from d.
func (r *RNG) Sample(d *Distribution) int64 {
	switch d.Kind {
	case Uniform:
		return r.Range(d.Min, d.Max+1)
	case Normal:
		z := r.normal()
		return max(1, int64(roundHalfAway(d.Mean+d.StdDev*z)))
	case LogNormal:
		mu, sigma := logNormalParams(d)
		return r.logNormal(mu, sigma)
	case Exponential:
		u := max(r.Float(), math.SmallestNonzeroFloat64*(1<<52)) // f64::MIN_POSITIVE
		raw := -math.Log(u) / d.Lambda
		if !(raw > 0) || math.IsInf(raw, 0) {
			return 1
		}
		return max(1, int64(roundHalfAway(raw)))
	}
	return 0
}

// logNormalParams converts the amount's mean and standard deviation to the
// underlying normal's mu and sigma.
func logNormalParams(d *Distribution) (mu, sigma float64) {
	s2 := math.Log(1 + d.StdDev*d.StdDev/(d.Mean*d.Mean))
	return math.Log(d.Mean) - s2/2, math.Sqrt(s2)
}

func (r *RNG) logNormal(mu, sigma float64) int64 {
	z := r.normal()
	return max(1, int64(roundHalfAway(math.Exp(mu+sigma*z))))
}
