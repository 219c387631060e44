package scenario

import (
	"strings"
	"testing"
)

func TestLogNormalLogScaleWarning(t *testing.T) {
	const doc = `
simulation: {ticks_per_day: 10, num_days: 1, rng_seed: 1}
agents:
  - id: A
    opening_balance: 1000
    arrival_config:
      rate_per_tick: 1
      amount_distribution: {type: LogNormal, mean: %s, std_dev: 0.9}
      counterparty_weights: {B: 1}
      deadline_range: [2, 5]
  - id: B
    opening_balance: 1000
`
	for _, tc := range []struct {
		mean string
		warn bool
	}{{"10.5", true}, {"10000", false}} {
		_, warns, err := LoadBytes("s.yaml", []byte(strings.Replace(doc, "%s", tc.mean, 1)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, w := range warns {
			if strings.Contains(w.Error(), "log-scale") && w.Line == 8 {
				got = true
			}
		}
		if got != tc.warn {
			t.Errorf("mean %s: log-scale warning %v, want %v (warnings %v)", tc.mean, got, tc.warn, warns)
		}
	}
}
