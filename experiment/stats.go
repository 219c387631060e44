package experiment

import (
	"math"
	"slices"
)

// Mean is the arithmetic mean; 0 for no values.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Std is the population standard deviation (divisor n), as SimCash's
// convergence check uses; 0 for no values.
func Std(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := Mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)))
}

// CV is the coefficient of variation, population std / |mean|. All-zero
// values give 0 (nothing varies); a zero mean with spread gives +Inf.
func CV(xs []float64) float64 {
	s, m := Std(xs), math.Abs(Mean(xs))
	switch {
	case s == 0:
		return 0
	case m == 0:
		return math.Inf(1)
	}
	return s / m
}

// PairedTInterval is the 95% two-sided Student t confidence interval of the
// mean of paired differences (cost_old - cost_new per sample). ok is false
// with fewer than two values, when no interval exists.
func PairedTInterval(deltas []float64) (lo, hi float64, ok bool) {
	n := len(deltas)
	if n < 2 {
		return 0, 0, false
	}
	m := Mean(deltas)
	var ss float64
	for _, d := range deltas {
		ss += (d - m) * (d - m)
	}
	se := math.Sqrt(ss/float64(n-1)) / math.Sqrt(float64(n))
	half := TQuantile(0.975, n-1) * se
	return m - half, m + half, true
}

// TQuantile is the inverse CDF of Student's t distribution with df degrees
// of freedom at probability p in (0, 1).
func TQuantile(p float64, df int) float64 {
	switch {
	case df < 1 || math.IsNaN(p) || p <= 0 || p >= 1:
		return math.NaN()
	case p == 0.5:
		return 0
	case p < 0.5:
		return -TQuantile(1-p, df)
	}
	// Bisection on the monotone CDF: 200 halvings of a bracket that starts
	// at [0, 1e7] leave an error far below float64 resolution.
	lo, hi := 0.0, 1.0
	for TCDF(hi, df) < p {
		lo, hi = hi, hi*2
		if hi > 1e7 {
			break
		}
	}
	for range 200 {
		mid := (lo + hi) / 2
		if TCDF(mid, df) < p {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo <= 1e-15*hi {
			break
		}
	}
	return (lo + hi) / 2
}

// TCDF is the CDF of Student's t distribution with df degrees of freedom.
func TCDF(t float64, df int) float64 {
	v := float64(df)
	tail := 0.5 * RegIncBeta(v/2, 0.5, v/(v+t*t))
	if t >= 0 {
		return 1 - tail
	}
	return tail
}

// RegIncBeta is the regularized incomplete beta function I_x(a, b), by the
// continued fraction of Numerical Recipes (Lentz's method).
func RegIncBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	// The fraction converges fast for x below the mean; use the symmetry
	// I_x(a,b) = 1 - I_{1-x}(b,a) otherwise.
	if x > (a+1)/(a+b+2) {
		return 1 - front*betaCF(b, a, 1-x)/b
	}
	return front * betaCF(a, b, x) / a
}

func betaCF(a, b, x float64) float64 {
	const tiny = 1e-300
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 1000; m++ {
		fm := float64(m)
		aa := fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm))
		d, c = 1+aa*d, 1+aa/c
		if math.Abs(d) < tiny {
			d = tiny
		}
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1))
		d, c = 1+aa*d, 1+aa/c
		if math.Abs(d) < tiny {
			d = tiny
		}
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return h
}

// MannKendallResult is the outcome of a Mann-Kendall trend test.
type MannKendallResult struct {
	S        int     // sum of signs of all later-minus-earlier pairs
	Variance float64 // variance of S, corrected for ties
	Z        float64 // normal score with continuity correction
	P        float64 // two-sided p-value
}

// MannKendall tests xs (in time order) for a monotone trend. Ties are
// corrected for in the variance; the two-sided p-value uses the normal
// approximation with continuity correction. Fewer than two values, or all
// equal, give S = 0 and P = 1.
func MannKendall(xs []float64) MannKendallResult {
	n := len(xs)
	s := 0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			switch {
			case xs[j] > xs[i]:
				s++
			case xs[j] < xs[i]:
				s--
			}
		}
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	var ties float64
	for i := 0; i < n; {
		j := i
		for j < n && sorted[j] == sorted[i] {
			j++
		}
		t := float64(j - i)
		ties += t * (t - 1) * (2*t + 5)
		i = j
	}
	fn := float64(n)
	v := (fn*(fn-1)*(2*fn+5) - ties) / 18
	r := MannKendallResult{S: s, Variance: v, P: 1}
	if v <= 0 {
		return r
	}
	switch {
	case s > 0:
		r.Z = float64(s-1) / math.Sqrt(v)
	case s < 0:
		r.Z = float64(s+1) / math.Sqrt(v)
	}
	r.P = math.Erfc(math.Abs(r.Z) / math.Sqrt2)
	return r
}
