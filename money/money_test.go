package money

import (
	"math"
	"testing"
)

func TestDollars(t *testing.T) {
	for _, c := range []struct {
		cents int64
		want  string
	}{
		{0, "$0.00"}, {5, "$0.05"}, {-5, "-$0.05"}, {123456, "$1,234.56"}, {-123456, "-$1,234.56"},
		{100000000, "$1,000,000.00"}, {math.MinInt64, "-$92,233,720,368,547,758.08"},
	} {
		if got := Dollars(c.cents); got != c.want {
			t.Errorf("Dollars(%d) = %q, want %q", c.cents, got, c.want)
		}
	}
	for _, c := range []struct {
		cents float64
		want  string
	}{{1245000.4, "$12,450.00"}, {-0.5, "-$0.01"}, {99.5, "$1.00"}} {
		if got := DollarsF(c.cents); got != c.want {
			t.Errorf("DollarsF(%v) = %q, want %q", c.cents, got, c.want)
		}
	}
}
