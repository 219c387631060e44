package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Inputs SimCash accepts (and its published policies use) load with one
// warning each, naming file, line and what was done.
func TestSimCashLenientInputs(t *testing.T) {
	const head = "simulation: {ticks_per_day: 4, num_days: 1, rng_seed: 1}\n"
	cases := []struct {
		name, yaml, warning string
	}{
		{"policy without type", head + "agents:\n  - {id: A, opening_balance: 0, policy: {}}\n  - {id: B, opening_balance: 0}\n",
			"s.yaml:3:41: agents[0].policy: policy has no type: read as Fifo"},
		{"collateral action in bank tree", head + `agents:
  - id: A
    opening_balance: 0
    policy: {type: InlineJson, json_string: '{"payment_tree":{"type":"action","node_id":"R","action":"Release"},"bank_tree":{"type":"action","node_id":"B","action":"PostCollateral","parameters":{"amount":{"value":1}}}}'}
  - {id: B, opening_balance: 0}
`, `s.yaml:5:13: agents[0].policy: bank_tree node "B": action "PostCollateral" in bank_tree does nothing (SimCash reads it as NoAction)`},
		{"priority_flag as a parameter", head + `agents:
  - id: A
    opening_balance: 0
    policy: {type: InlineJson, json_string: '{"parameters":{"f":1},"payment_tree":{"type":"action","node_id":"R","action":"Release","parameters":{"priority_flag":{"param":"f"}}}}'}
  - {id: B, opening_balance: 0}
`, `agents[0].policy: payment_tree node "R": parameter "priority_flag" is ignored`},
		{"auto_balance_others", head + "agents: [{id: A, opening_balance: 0}, {id: B, opening_balance: 0}, {id: C, opening_balance: 0}]\n" +
			"scenario_events:\n  - {type: CounterpartyWeightChange, agent: A, counterparty: B, new_weight: 0.5, auto_balance_others: true, schedule: {type: OneTime, tick: 1}}\n",
			"scenario_events[0].auto_balance_others: auto_balance_others is ignored"},
		{"escalation threshold_ticks", head + "agents: [{id: A, opening_balance: 0}, {id: B, opening_balance: 0}]\npriority_escalation: {enabled: true, curve: exponential, threshold_ticks: 25}\n",
			"priority_escalation.threshold_ticks: threshold_ticks is ignored"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "s.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, warns, err := Load(f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, w := range warns {
				all = append(all, strings.TrimPrefix(w.Error(), filepath.Dir(f)+"/"))
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.warning) {
				t.Errorf("warnings\n%s\nwant one containing\n%s", strings.Join(all, "\n"), tc.warning)
			}
			if cfg.Agents[0].Policy == nil {
				t.Error("no policy")
			}
		})
	}
}
