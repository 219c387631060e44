package experiment

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"simcash/yamlfile"
)

// sharedDir is ../shared relative to the repository root.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "simcash", "castro", "experiments")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("reference experiments not available at %s: %v", dir, err)
	}
	return dir
}

// minimal is a valid experiment file; tests edit it with strings.Replace.
const minimal = `name: t
scenario: scen.yaml
evaluation:
  mode: deterministic
  ticks: 2
convergence:
  max_iterations: 10
llm:
  model: builtin:search
optimized_agents: [BANK_A, BANK_B]
`

// writeExperiment writes text as exp.yaml next to an empty scenario file.
func writeExperiment(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "scen.yaml"), []byte("simulation: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "exp.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadReferenceExperiments(t *testing.T) {
	dir := sharedDir(t)
	tests := []struct {
		file, mode, db string
		fields         int
	}{
		{"exp1.yaml", ModeDeterministic, "exp1.db", 3},
		{"exp2.yaml", ModeBootstrap, "exp2.db", 5},
		{"exp3.yaml", ModeDeterministic, "exp3.db", 5},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, warnings, err := Load(filepath.Join(dir, tt.file), LoadOptions{Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if c.Evaluation.Mode != tt.mode || c.Evaluation.NumSamples != 50 {
				t.Errorf("evaluation = %+v", c.Evaluation)
			}
			if c.Convergence.MaxIterations != 25 || c.Convergence.StabilityWindow != 5 ||
				c.Convergence.CVThreshold != 0.03 || c.Convergence.RegretThreshold != 0.10 {
				t.Errorf("convergence = %+v", c.Convergence)
			}
			if c.LLM.Provider != "openai" || c.LLM.ModelName != "gpt-5.2" || c.LLM.Temperature != 0.5 ||
				c.LLM.TimeoutSeconds != 900 || c.LLM.ReasoningEffort != "high" || c.LLM.MaxRetries != 3 {
				t.Errorf("llm = %+v", c.LLM)
			}
			if !c.HasOutput || c.Output.Database != tt.db || !c.Output.Verbose {
				t.Errorf("output = %+v (has %v)", c.Output, c.HasOutput)
			}
			if c.MasterSeed != 42 || len(c.OptimizedAgents) != 2 {
				t.Errorf("seed %d agents %v", c.MasterSeed, c.OptimizedAgents)
			}
			cons := c.Constraints()
			if len(cons.Parameters) != 1 || cons.Parameters[0].Name != "initial_liquidity_fraction" ||
				*cons.Parameters[0].Min != 0 || *cons.Parameters[0].Max != 1 || len(cons.Fields) != tt.fields ||
				len(cons.Actions["payment_tree"]) != 2 {
				t.Errorf("constraints = %+v", cons)
			}
			if _, err := os.Stat(c.ScenarioPath); err != nil {
				t.Errorf("scenario path not resolved: %v", err)
			}
			if err := c.Validate([]string{"BANK_A", "BANK_B"}); err != nil {
				t.Error(err)
			}
			if got := c.Customization("BANK_A"); !strings.HasPrefix(got, "This scenario tests") || strings.HasSuffix(got, "\n") {
				t.Errorf("customization = %q", got)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	c, warnings, err := Load(writeExperiment(t, strings.Replace(minimal, "  mode: deterministic\n", "", 1)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	want := ConvergenceConfig{MaxIterations: 10, StabilityThreshold: 0.05, StabilityWindow: 5, CVThreshold: 0.03,
		RegretThreshold: 0.10, ImprovementThreshold: 0.01}
	if c.Convergence != want {
		t.Errorf("convergence = %+v, want %+v", c.Convergence, want)
	}
	if c.Evaluation.Mode != ModeBootstrap || c.Evaluation.NumSamples != 10 || c.Evaluation.Acceptance.MaxCoefficientOfVariation != nil {
		t.Errorf("evaluation = %+v", c.Evaluation)
	}
	if c.LLM.Temperature != 0 || c.LLM.MaxRetries != 3 || c.LLM.Timeout() != 120*time.Second || c.LLM.Provider != "builtin" {
		t.Errorf("llm = %+v", c.LLM)
	}
	if c.MasterSeed != 42 || c.HasOutput || c.PolicyConstraints != nil {
		t.Errorf("seed %d, has output %v, constraints %v", c.MasterSeed, c.HasOutput, c.PolicyConstraints)
	}
	if c.Output.Directory != "results" || c.Output.Database != "experiments.db" {
		t.Errorf("output defaults = %+v", c.Output)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           []string // substrings of the one error
	}{
		{"bad name", "name: t\n", "name: my exp.v2\n", []string{"exp.yaml:1:", "name", "letters, digits"}},
		{"scenario field absent", "scenario: scen.yaml\n", "", []string{"scenario", "required field missing"}},
		{"scenario file not found", "scenario: scen.yaml", "scenario: nope.yaml", []string{"exp.yaml:2:", "scenario", "nope.yaml", "not found"}},
		{"bad mode", "mode: deterministic", "mode: montecarlo", []string{"exp.yaml:4:", "evaluation.mode", "montecarlo"}},
		{"model without provider", "builtin:search", "gpt-5", []string{"llm.model", "provider:model"}},
		{"unknown provider", "builtin:search", "acme:x", []string{"llm.model", "unknown provider"}},
		{"unknown builtin", "builtin:search", "builtin:genetic", []string{"llm.model", "builtin:search"}},
		{"min above max", "optimized_agents", "policy_constraints:\n  allowed_parameters:\n    - {name: f, param_type: float, min_value: 2, max_value: 1}\noptimized_agents",
			[]string{"min_value", "above max_value"}},
		{"bad param type", "optimized_agents", "policy_constraints:\n  allowed_parameters:\n    - {name: f, param_type: complex}\noptimized_agents",
			[]string{"param_type", "complex"}},
		{"enum without values", "optimized_agents", "policy_constraints:\n  allowed_parameters:\n    - {name: f, param_type: enum}\noptimized_agents",
			[]string{"allowed_values", "required"}},
		{"ticks missing", "  ticks: 2\n", "", []string{"evaluation.ticks", "required"}},
		{"mistyped number", "max_iterations: 10", "max_iterations: ten", []string{"convergence.max_iterations"}},
		{"window zero", "max_iterations: 10", "stability_window: 0", []string{"convergence.stability_window", "at least 1"}},
		{"both system prompts", "  model: builtin:search\n", "  model: builtin:search\n  system_prompt: a\n  system_prompt_file: b.txt\n",
			[]string{"system_prompt_file", "not both"}},
		{"unknown field", "optimized_agents", "policy_constraints:\n  allowed_fields: [balance, balanse]\noptimized_agents",
			[]string{"allowed_fields[1]", "balanse"}},
		{"unknown tree", "optimized_agents", "policy_constraints:\n  allowed_actions:\n    pay_tree: [Release]\noptimized_agents",
			[]string{"allowed_actions.pay_tree", "unknown tree"}},
		{"action in wrong tree", "optimized_agents", "policy_constraints:\n  allowed_actions:\n    bank_tree: [Release]\noptimized_agents",
			[]string{"allowed_actions.bank_tree[0]", "not allowed in bank_tree"}},
		{"duplicate agent", "[BANK_A, BANK_B]", "[BANK_A, BANK_A]", []string{"optimized_agents[1]", "twice"}},
		{"bad initial policy", "optimized_agents", "initial_policies:\n  BANK_A: missing.json\noptimized_agents",
			[]string{"initial_policies.BANK_A", "missing.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(minimal, tt.old) {
				t.Fatalf("test edits %q, which the base file lacks", tt.old)
			}
			_, _, err := Load(writeExperiment(t, strings.Replace(minimal, tt.old, tt.new, 1)), LoadOptions{})
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("want one error, got:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			var ye *yamlfile.Error
			if !errors.As(err, &ye) || ye.Line == 0 {
				t.Errorf("error %q has no file position", msg)
			}
		})
	}
}

func TestUnknownKeys(t *testing.T) {
	p := writeExperiment(t, minimal+"legacy_key: 1\n")
	_, warnings, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].String(), "legacy_key") || !strings.Contains(warnings[0].String(), "exp.yaml:11") {
		t.Errorf("warnings = %v", warnings)
	}
	if _, _, err := Load(p, LoadOptions{Strict: true}); err == nil || !strings.Contains(err.Error(), "legacy_key") {
		t.Errorf("strict: err = %v, want an unknown-key error", err)
	}
}

func TestValidateAgents(t *testing.T) {
	text := strings.Replace(minimal, "optimized_agents", "initial_policies:\n  BANK_C: {parameters: {initial_liquidity_fraction: 0.3}}\nprompt_customization:\n  all: hi\n  BANK_A: you are A\noptimized_agents", 1)
	c, _, err := Load(writeExperiment(t, text), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate([]string{"BANK_A", "BANK_C"})
	if err == nil || !strings.Contains(err.Error(), "agent BANK_B is not in the scenario") || !strings.Contains(err.Error(), "exp.yaml:15:") {
		t.Errorf("err = %v, want BANK_B unknown at line 15", err)
	}
	if err := c.Validate([]string{"BANK_A", "BANK_B"}); err == nil || !strings.Contains(err.Error(), "initial_policies") {
		t.Errorf("err = %v, want BANK_C of initial_policies unknown", err)
	}
	if err := c.Validate([]string{"BANK_A", "BANK_B", "BANK_C"}); err != nil {
		t.Error(err)
	}
	if got, want := c.Customization("BANK_A"), "hi\n\nyou are A"; got != want {
		t.Errorf("Customization(BANK_A) = %q, want %q", got, want)
	}
	if got := c.Customization("BANK_B"); got != "hi" {
		t.Errorf("Customization(BANK_B) = %q, want %q", got, "hi")
	}
	var pol map[string]map[string]float64
	if err := json.Unmarshal(c.InitialPolicies["BANK_C"], &pol); err != nil || pol["parameters"]["initial_liquidity_fraction"] != 0.3 {
		t.Errorf("initial policy = %s (%v)", c.InitialPolicies["BANK_C"], err)
	}
}

func TestInitialPolicyFile(t *testing.T) {
	p := writeExperiment(t, strings.Replace(minimal, "optimized_agents", "initial_policies:\n  BANK_A: pol/a.json\n  BANK_B: '{\"parameters\": {}}'\noptimized_agents", 1))
	if err := os.MkdirAll(filepath.Join(filepath.Dir(p), "pol"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "pol", "a.json"), []byte(`{"version": "1.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.InitialPolicies["BANK_A"]) != `{"version": "1.0"}` || string(c.InitialPolicies["BANK_B"]) != `{"parameters": {}}` {
		t.Errorf("initial policies = %s", c.InitialPolicies)
	}
}

func TestResolvedJSONHashAndOverrides(t *testing.T) {
	c, _, err := Load(writeExperiment(t, minimal), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(c.ResolvedJSON(), &m); err != nil {
		t.Fatal(err)
	}
	if m["master_seed"] != 42.0 || m["scenario"] != "scen.yaml" || m["output"] != nil {
		t.Errorf("resolved = %s", c.ResolvedJSON())
	}
	conv, _ := m["convergence"].(map[string]any)
	if conv["cv_threshold"] != 0.03 {
		t.Errorf("resolved convergence = %v, want defaults included", conv)
	}
	h := c.Hash()
	if len(h) != 64 || h != c.Hash() {
		t.Errorf("hash %q not a stable SHA-256 hex", h)
	}

	seed := int64(7)
	if err := c.ApplyOverrides(Overrides{Seed: &seed, Model: "openai:gpt-4o", MaxIterations: 3, DB: "out/x.db"}); err != nil {
		t.Fatal(err)
	}
	if c.MasterSeed != 7 || c.LLM.Provider != "openai" || c.LLM.ModelName != "gpt-4o" ||
		c.Convergence.MaxIterations != 3 || !c.HasOutput || c.DatabasePath() != "out/x.db" {
		t.Errorf("after overrides: %+v", c)
	}
	if c.Hash() == h {
		t.Error("hash did not change with the config")
	}
	if err := c.ApplyOverrides(Overrides{Model: "nonsense"}); err == nil {
		t.Error("want an error for a bad --model")
	}
}

func TestDatabasePath(t *testing.T) {
	c := &Config{Output: OutputConfig{Directory: "results", Database: "exp1.db"}}
	if got := c.DatabasePath(); got != filepath.Join("results", "exp1.db") {
		t.Errorf("DatabasePath = %q", got)
	}
}

// TestProjectExperiments loads testdata/experiments and checks that they
// carry the reference study's settings with the built-in optimizer.
func TestProjectExperiments(t *testing.T) {
	for _, name := range []string{"exp1", "exp2", "exp3"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "testdata", "experiments", name+".yaml")
			if _, err := os.Stat(filepath.Join("..", "testdata", "scenarios", name+".yaml")); err != nil {
				// The scenario may not be written yet: load a copy beside a
				// stand-in scenario so the experiment file is still checked.
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				for _, sub := range []string{"experiments", "scenarios"} {
					if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				path = filepath.Join(dir, "experiments", name+".yaml")
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "scenarios", name+".yaml"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, warnings, err := Load(path, LoadOptions{Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if c.LLM.Model != "builtin:search" || !c.HasOutput || c.Output.Database != name+".db" || c.Output.Directory != "results" {
				t.Errorf("llm %+v output %+v", c.LLM, c.Output)
			}
			refDir := filepath.Join("..", "..", "shared", "simcash", "castro", "experiments")
			if _, err := os.Stat(refDir); err != nil {
				t.Skipf("reference experiments not available at %s, settings not compared: %v", refDir, err)
			}
			ref, _, err := Load(filepath.Join(refDir, name+".yaml"), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Evaluation != ref.Evaluation || c.Convergence != ref.Convergence || c.MasterSeed != ref.MasterSeed ||
				strings.Join(c.OptimizedAgents, ",") != strings.Join(ref.OptimizedAgents, ",") {
				t.Errorf("settings differ from the reference:\n ours %+v %+v\n ref  %+v %+v", c.Evaluation, c.Convergence, ref.Evaluation, ref.Convergence)
			}
			ours, _ := json.Marshal(c.Constraints())
			theirs, _ := json.Marshal(ref.Constraints())
			var a, b map[string]any
			_ = json.Unmarshal(ours, &a)
			_ = json.Unmarshal(theirs, &b)
			// Descriptions are in our own words; compare the rest.
			for _, m := range []map[string]any{a, b} {
				for _, p := range m["parameters"].([]any) {
					delete(p.(map[string]any), "description")
				}
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Errorf("constraints differ from the reference:\n ours %s\n ref  %s", ja, jb)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                      "",
		"http://localhost:8000/v1":              "http://localhost:8000/v1",
		"https://user:s3cret@llm.example/v1":    "https://user:REDACTED@llm.example/v1",
		"https://llm.example/v1?api_key=s3cret": "https://llm.example/v1?api_key=REDACTED",
		"https://llm.example/v1?Token=a&x=1":    "https://llm.example/v1?Token=REDACTED&x=1",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	c := &Config{LLM: LLMConfig{BaseURL: "https://u:pw@h/v1"}}
	if strings.Contains(string(c.ResolvedJSON()), "pw") || c.LLM.BaseURL != "https://u:pw@h/v1" {
		t.Errorf("ResolvedJSON %s; the config's own URL must stay usable: %s", c.ResolvedJSON(), c.LLM.BaseURL)
	}
}
