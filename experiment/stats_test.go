package experiment

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMeanStdCV(t *testing.T) {
	tests := []struct {
		xs            []float64
		mean, std, cv float64
	}{
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, 2, 0.4},
		{[]float64{-1, -3}, -2, 1, 0.5},
		{[]float64{3, 3, 3}, 3, 0, 0},
		{[]float64{0, 0}, 0, 0, 0},
		{nil, 0, 0, 0},
	}
	for _, tt := range tests {
		if got := Mean(tt.xs); !near(got, tt.mean, 1e-12) {
			t.Errorf("Mean(%v) = %v, want %v", tt.xs, got, tt.mean)
		}
		if got := Std(tt.xs); !near(got, tt.std, 1e-12) {
			t.Errorf("Std(%v) = %v, want %v", tt.xs, got, tt.std)
		}
		if got := CV(tt.xs); !near(got, tt.cv, 1e-12) {
			t.Errorf("CV(%v) = %v, want %v", tt.xs, got, tt.cv)
		}
	}
	if got := CV([]float64{-1, 1}); !math.IsInf(got, 1) {
		t.Errorf("CV with zero mean = %v, want +Inf", got)
	}
}

// Quantiles from standard Student t tables.
func TestTQuantile(t *testing.T) {
	tests := []struct {
		p    float64
		df   int
		want float64
	}{
		{0.975, 1, 12.7062047362},
		{0.975, 2, 4.30265272975},
		{0.975, 3, 3.18244630528},
		{0.975, 5, 2.57058183661},
		{0.975, 10, 2.22813885196},
		{0.975, 30, 2.04227245630},
		{0.975, 100, 1.98397151845},
		{0.95, 10, 1.81246112281},
		{0.995, 5, 4.03214298356},
		{0.025, 10, -2.22813885196},
		{0.5, 7, 0},
	}
	for _, tt := range tests {
		if got := TQuantile(tt.p, tt.df); !near(got, tt.want, 1e-8) {
			t.Errorf("TQuantile(%v, %d) = %.11f, want %.11f", tt.p, tt.df, got, tt.want)
		}
	}
	if !math.IsNaN(TQuantile(0.975, 0)) || !math.IsNaN(TQuantile(1, 5)) {
		t.Error("invalid arguments must give NaN")
	}
}

func TestPairedTInterval(t *testing.T) {
	// mean 2, sample sd 1, n 4: half width = t(0.975,3) * 1/2.
	lo, hi, ok := PairedTInterval([]float64{1, 2, 3, 2})
	sd := math.Sqrt(2.0 / 3.0)
	half := 3.18244630528 * sd / 2
	if !ok || !near(lo, 2-half, 1e-9) || !near(hi, 2+half, 1e-9) {
		t.Errorf("interval = [%v, %v] ok=%v, want [%v, %v]", lo, hi, ok, 2-half, 2+half)
	}
	if _, _, ok := PairedTInterval([]float64{5}); ok {
		t.Error("one delta must not give an interval")
	}
	lo, hi, _ = PairedTInterval([]float64{3, 3, 3})
	if lo != 3 || hi != 3 {
		t.Errorf("constant deltas: [%v, %v], want [3, 3]", lo, hi)
	}
}

// Expected values computed independently (Python, the textbook formulas).
func TestMannKendall(t *testing.T) {
	tests := []struct {
		xs      []float64
		s       int
		v, z, p float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 10, 16.666666666666668, 2.2045407685048604, 0.027486336111510353},
		{[]float64{1, 1, 2, 3}, 5, 7.666666666666667, 1.4446302370292303, 0.1485617748918687},
		{[]float64{5, 3, 4, 1, 2, 2, 0}, -14, 43.333333333333336, -1.9748417658131499, 0.04828610767668166},
		{[]float64{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12, 122, 0.9958932064677039, 0.31930203648285493},
		{[]float64{2, 2, 2, 2, 2}, 0, 0, 0, 1},
		{[]float64{7}, 0, 0, 0, 1},
	}
	for _, tt := range tests {
		r := MannKendall(tt.xs)
		if r.S != tt.s || !near(r.Variance, tt.v, 1e-9) || !near(r.Z, tt.z, 1e-9) || !near(r.P, tt.p, 1e-9) {
			t.Errorf("MannKendall(%v) = %+v, want S=%d var=%v z=%v p=%v", tt.xs, r, tt.s, tt.v, tt.z, tt.p)
		}
	}
}

func TestRegIncBeta(t *testing.T) {
	// I_x(1, 1) = x; I_x(2, 1) = x^2; I_0.5(a, a) = 0.5.
	tests := []struct{ a, b, x, want float64 }{
		{1, 1, 0.3, 0.3},
		{2, 1, 0.6, 0.36},
		{3.5, 3.5, 0.5, 0.5},
		{0.5, 0.5, 0, 0},
		{0.5, 0.5, 1, 1},
	}
	for _, tt := range tests {
		if got := RegIncBeta(tt.a, tt.b, tt.x); !near(got, tt.want, 1e-12) {
			t.Errorf("RegIncBeta(%v, %v, %v) = %v, want %v", tt.a, tt.b, tt.x, got, tt.want)
		}
	}
}
