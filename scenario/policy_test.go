package scenario

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const holdPolicy = `{"version": "1.0", "policy_id": "hold_all",
 "parameters": {"initial_liquidity_fraction": 0.3, "knob": 1},
 "payment_tree": {"type": "action", "node_id": "h", "action": "Hold"}}`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func oneAgent(policy string) string {
	return "simulation: {ticks_per_day: 4, num_days: 1, rng_seed: 1}\nagents:\n  - id: A\n    opening_balance: 0\n    policy: " + policy + "\n"
}

func TestPolicyForms(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		params map[string]float64 // expected parameter values
		id     string             // expected policy_id in the canonical JSON, if set
	}{
		{"fifo", "{type: Fifo}", nil, ""},
		{"deadline inline param", "{type: Deadline, urgency_threshold: 7}", map[string]float64{"urgency_threshold": 7}, ""},
		{"liquidity aware", "{type: LiquidityAware, target_buffer: 900, urgency_threshold: 2}", map[string]float64{"target_buffer": 900, "urgency_threshold": 2}, ""},
		{"fifo with params", "{type: Fifo, params: {initial_liquidity_fraction: 0.4}}", map[string]float64{"initial_liquidity_fraction": 0.4}, ""},
		{"inline", `{type: Inline, params: {knob: 5}, decision_trees: {version: "1.0", policy_id: inl, parameters: {knob: 2},
      payment_tree: {type: action, node_id: r, action: Release}}}`, map[string]float64{"knob": 5}, "inl"},
		{"inline json", "{type: InlineJson, json_string: '" + strings.ReplaceAll(holdPolicy, "\n", " ") + "'}", map[string]float64{"knob": 1, "initial_liquidity_fraction": 0.3}, "hold_all"},
		{"inline json shorthand", "{type: InlineJson, json: '" + strings.ReplaceAll(holdPolicy, "\n", " ") + "'}", map[string]float64{"knob": 1}, "hold_all"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, w := mustLoadString(t, oneAgent(c.policy))
			if len(w) != 0 {
				t.Errorf("warnings: %v", w)
			}
			p := cfg.Agents[0].Policy
			if p == nil {
				t.Fatal("nil policy")
			}
			for k, want := range c.params {
				if got, ok := p.Param(k); !ok || got != want {
					t.Errorf("param %s = %v (present %v), want %v", k, got, ok, want)
				}
			}
			if c.id != "" && !strings.Contains(string(p.JSON()), `"`+c.id+`"`) {
				t.Errorf("policy JSON %s does not name %s", p.JSON(), c.id)
			}
		})
	}
}

// TestPolicyPathResolution lays out a tree like SimCash's repository and
// checks each way a json_path is found.
func TestPolicyPathResolution(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "repo", "policies", "hold.json"), holdPolicy)
	writeFile(t, filepath.Join(root, "repo", "examples", "local.json"), holdPolicy)
	writeFile(t, filepath.Join(root, "elsewhere", "extra.json"), holdPolicy)
	scenarioPath := filepath.Join(root, "repo", "examples", "s.yaml")

	cases := []struct {
		name, jsonPath string
		dirs           []string
		ok             bool
	}{
		{"relative to the scenario", "local.json", nil, true},
		{"absolute", filepath.Join(root, "repo", "policies", "hold.json"), nil, true},
		{"repo-root relative, leading component dropped", "simulator/policies/hold.json", nil, true},
		{"relative to an ancestor", "repo/policies/hold.json", nil, true},
		{"policy dirs by base name", "somewhere/extra.json", []string{filepath.Join(root, "elsewhere")}, true},
		{"not found", "simulator/policies/missing.json", []string{filepath.Join(root, "elsewhere")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := oneAgent("{type: FromJson, json_path: '" + c.jsonPath + "', params: {knob: 9}}")
			writeFile(t, scenarioPath, src)
			cfg, _, err := Load(scenarioPath, Options{PolicyDirs: c.dirs})
			if !c.ok {
				if err == nil {
					t.Fatal("no error")
				}
				for _, want := range []string{"s.yaml:5:", "agents[0].policy.json_path", "missing.json in the policy directories", filepath.Join(root, "repo", "examples") + " and each directory above it"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := cfg.Agents[0].Policy.Param("knob"); v != 9 {
				t.Errorf("params not applied: knob = %v", v)
			}
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	cases := []struct{ name, policy, want string }{
		{"inline not a mapping", "{type: Inline, decision_trees: [1]}", "agents[0].policy.decision_trees: want the policy document as a mapping"},
		{"inline invalid", "{type: Inline, decision_trees: {version: '1.0', policy_id: x, payment_tree: {type: action, node_id: a, action: Explode}}}", "agents[0].policy.decision_trees: inline policy is invalid"},
		{"missing json path", "{type: FromJson}", "agents[0].policy.json_path: required field missing"},
		{"both json forms", "{type: InlineJson, json: '{}', json_string: '{}'}", "give json_string or json, not both"},
		{"params not numbers", "{type: Fifo, params: {x: abc}}", `agents[0].policy.params.x: want a number, got string "abc"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := loadString(t, oneAgent(c.policy), Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want %q", err, c.want)
			}
		})
	}
}

// TestPolicyPathLogged: the resolved file is logged at debug level, so a
// user can see which of several candidates was used.
func TestPolicyPathLogged(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "policies", "hold.json"), holdPolicy)
	path := filepath.Join(root, "examples", "s.yaml")
	writeFile(t, path, oneAgent("{type: FromJson, json_path: simulator/policies/hold.json}"))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, _, err := Load(path, Options{Logger: log}); err != nil {
		t.Fatal(err)
	}
	if want := "path=" + filepath.Join(root, "policies", "hold.json"); !strings.Contains(buf.String(), want) {
		t.Errorf("log %q lacks %q", buf.String(), want)
	}
}
