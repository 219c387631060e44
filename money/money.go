// Package money formats int64 cents for people: dollars with two decimals
// and thousands separators. Stored and sent amounts stay cents; only text a
// person reads goes through here.
package money

import (
	"strconv"
	"strings"
)

// Dollars formats cents as dollars, e.g. -123456 -> "-$1,234.56".
func Dollars(cents int64) string {
	sign := ""
	u := uint64(cents)
	if cents < 0 {
		sign, u = "-", uint64(-cents) // -MinInt64 wraps to itself, which is right as uint64
	}
	whole := strconv.FormatUint(u/100, 10)
	var b strings.Builder
	b.WriteString(sign)
	b.WriteByte('$')
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	frac := u % 100
	b.WriteByte('.')
	b.WriteByte(byte('0' + frac/10))
	b.WriteByte(byte('0' + frac%10))
	return b.String()
}

// DollarsF formats a fractional amount of cents (a mean, a bound of an
// interval) as dollars, rounded to the cent.
func DollarsF(cents float64) string {
	if cents >= 0 {
		return Dollars(int64(cents + 0.5))
	}
	return Dollars(-int64(-cents + 0.5))
}
