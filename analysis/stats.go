package analysis

import (
	"math"

	"simcash/experiment"
)

// Summary describes a sample of values: n, mean, sample standard deviation
// (divisor n-1) and the 95% Student t interval of the mean. With one value
// the deviation is 0 and the interval is that value.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	Lo   float64 `json:"ci95_lower"`
	Hi   float64 `json:"ci95_upper"`
}

// Summarize computes the Summary of xs.
func Summarize(xs []float64) Summary {
	s := Summary{N: len(xs)}
	if s.N == 0 {
		return s
	}
	s.Mean = experiment.Mean(xs)
	s.Lo, s.Hi = s.Mean, s.Mean
	if s.N < 2 {
		return s
	}
	var ss float64
	for _, x := range xs {
		ss += (x - s.Mean) * (x - s.Mean)
	}
	s.SD = math.Sqrt(ss / float64(s.N-1))
	half := experiment.TQuantile(0.975, s.N-1) * s.SD / math.Sqrt(float64(s.N))
	s.Lo, s.Hi = s.Mean-half, s.Mean+half
	return s
}
