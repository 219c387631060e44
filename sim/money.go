package sim

import "math/bits"

// mulDiv returns floor(a*b/d) for non-negative a, b and positive d without
// overflowing: products of cents and scaled rates can exceed int64.
func mulDiv(a, b, d int64) int64 {
	return mulAddDiv(a, b, 0, d)
}

// mulAddDiv returns floor((a*b + c)/d) for non-negative a, b, c and positive
// d. The engine's "round half up" divisions pass c = d/2.
func mulAddDiv(a, b, c, d int64) int64 {
	if a <= 0 || b <= 0 {
		if c <= 0 {
			return 0
		}
		return c / d
	}
	if a < 1<<31 && b < 1<<31 && c < 1<<61 {
		return (a*b + c) / d
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	lo, carry := bits.Add64(lo, uint64(c), 0)
	hi += carry
	if hi >= uint64(d) {
		// The result does not fit in int64: saturate rather than wrap.
		return 1<<63 - 1
	}
	q, _ := bits.Div64(hi, lo, uint64(d))
	return int64(q)
}

// scaleRate converts a float rate to a scaled integer, rounding half away
// from zero, as the spec states for each cost rate.
func scaleRate(rate, scale float64) int64 {
	return int64(roundHalfAway(rate * scale))
}
