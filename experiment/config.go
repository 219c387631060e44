package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"simcash/optimizer"
	"simcash/policy"
	"simcash/yamlfile"
)

// Evaluation modes. "deterministic-pairwise" is read as ModeDeterministic.
const (
	ModeBootstrap     = "bootstrap"
	ModeDeterministic = "deterministic"
	ModeTemporal      = "deterministic-temporal"
)

// validName keeps experiment names safe inside experiment ids, which are
// NATS subject tokens and file names.
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Providers accepted in llm.model ("provider:model").
var providers = []string{"openai", "anthropic", "google", "builtin"}

// Config is a loaded experiment file with defaults applied. JSON tags follow
// the file's field names so ResolvedJSON reads like the file.
type Config struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Scenario is the path as written; ScenarioPath is it resolved against
	// the experiment file's directory (kept out of the JSON so the hash does
	// not depend on where the checkout lives).
	Scenario     string `json:"scenario"`
	ScenarioPath string `json:"-"`
	// ScenarioContent is the scenario file's text as loaded, so the stored
	// config (and its hash) says what was simulated even after the file
	// changes or is deleted, and the run can be repeated from the database.
	ScenarioContent string `json:"scenario_content,omitempty"`
	// File is the experiment file this config was loaded from.
	File string `json:"-"`

	MasterSeed      int64             `json:"master_seed"`
	Evaluation      EvaluationConfig  `json:"evaluation"`
	Convergence     ConvergenceConfig `json:"convergence"`
	LLM             LLMConfig         `json:"llm"`
	OptimizedAgents []string          `json:"optimized_agents"`

	// PolicyConstraints is nil when the file has no policy_constraints.
	PolicyConstraints *PolicyConstraints `json:"policy_constraints,omitempty"`
	// PromptCustomization maps "all" and agent ids to their texts.
	PromptCustomization map[string]string `json:"prompt_customization,omitempty"`
	// InitialPolicies maps agent ids to policy JSON objects (file contents
	// when the file gave a path).
	InitialPolicies map[string]json.RawMessage `json:"initial_policies,omitempty"`

	// HasOutput is false when the file has no output section: nothing is
	// persisted then.
	HasOutput bool         `json:"-"`
	Output    OutputConfig `json:"output"`

	// where remembers positions of fields that Validate may complain about.
	where map[string]*yamlfile.Error
}

// EvaluationConfig is the evaluation section.
type EvaluationConfig struct {
	Mode       string           `json:"mode"`
	NumSamples int              `json:"num_samples"`
	Ticks      int              `json:"ticks"`
	Acceptance AcceptanceConfig `json:"acceptance"`
}

// AcceptanceConfig holds the optional extra acceptance tests.
type AcceptanceConfig struct {
	RequireStatisticalSignificance bool `json:"require_statistical_significance"`
	// MaxCoefficientOfVariation is nil when not set (no limit).
	MaxCoefficientOfVariation *float64 `json:"max_coefficient_of_variation,omitempty"`
}

// ConvergenceConfig is the convergence section.
type ConvergenceConfig struct {
	MaxIterations        int     `json:"max_iterations"`
	StabilityThreshold   float64 `json:"stability_threshold"`
	StabilityWindow      int     `json:"stability_window"`
	CVThreshold          float64 `json:"cv_threshold"`
	RegretThreshold      float64 `json:"regret_threshold"`
	ImprovementThreshold float64 `json:"improvement_threshold"`
}

// LLMConfig is the llm section. Provider and ModelName are Model split at
// its first colon.
type LLMConfig struct {
	Model           string  `json:"model"`
	Provider        string  `json:"-"`
	ModelName       string  `json:"-"`
	Temperature     float64 `json:"temperature"`
	MaxRetries      int     `json:"max_retries"`
	TimeoutSeconds  float64 `json:"timeout_seconds"`
	ReasoningEffort string  `json:"reasoning_effort,omitempty"`
	ThinkingBudget  int     `json:"thinking_budget,omitempty"`
	// SystemPrompt holds the text of system_prompt_file when that was given.
	SystemPrompt     string `json:"system_prompt,omitempty"`
	SystemPromptFile string `json:"system_prompt_file,omitempty"`
	BaseURL          string `json:"base_url,omitempty"`
	MaxTokens        int    `json:"max_tokens,omitempty"`
}

// PolicyConstraints is the policy_constraints section.
type PolicyConstraints struct {
	AllowedParameters []AllowedParameter  `json:"allowed_parameters,omitempty"`
	AllowedFields     []string            `json:"allowed_fields,omitempty"`
	AllowedActions    map[string][]string `json:"allowed_actions,omitempty"`
}

// AllowedParameter is one entry of allowed_parameters.
type AllowedParameter struct {
	Name          string   `json:"name"`
	ParamType     string   `json:"param_type"`
	MinValue      *float64 `json:"min_value,omitempty"`
	MaxValue      *float64 `json:"max_value,omitempty"`
	AllowedValues []any    `json:"allowed_values,omitempty"`
	Description   string   `json:"description,omitempty"`
}

// OutputConfig is the output section.
type OutputConfig struct {
	Directory string `json:"directory"`
	Database  string `json:"database"`
	Verbose   bool   `json:"verbose"`
}

// LoadOptions tune Load.
type LoadOptions struct {
	// Strict makes unknown keys errors instead of warnings.
	Strict bool
}

// Warning is a non-fatal problem in an experiment file, such as an unknown
// key, located like an error.
type Warning struct{ yamlfile.Error }

// String formats the warning as "file:line:col: field: msg".
func (w Warning) String() string { return w.Error.Error() }

// Load reads the experiment file at path, applies defaults and checks
// everything that does not need the scenario. Errors name the file, line and
// field; the scenario file must exist.
func Load(path string, opts LoadOptions) (*Config, []Warning, error) {
	data, err := yamlfile.ReadLimited(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load experiment: read config file: %w", err)
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes is Load of a file's contents; path names it in messages and
// locates the scenario file.
func LoadBytes(path string, data []byte, opts LoadOptions) (*Config, []Warning, error) {
	doc, err := yamlfile.Parse(path, data)
	if err != nil {
		return nil, nil, fmt.Errorf("load experiment: %w", err)
	}
	doc.Strict = opts.Strict
	c := &Config{File: path, where: map[string]*yamlfile.Error{}}
	c.read(doc.Root().Map(), filepath.Dir(path))
	var warnings []Warning
	for _, w := range doc.Warnings() {
		warnings = append(warnings, Warning{*w})
	}
	if err := doc.Err(); err != nil {
		return nil, warnings, fmt.Errorf("load experiment: %w", err)
	}
	return c, warnings, nil
}

func (c *Config) read(root yamlfile.Map, dir string) {
	root.Known("name", "description", "scenario", "master_seed", "evaluation", "convergence", "llm",
		"optimized_agents", "policy_constraints", "prompt_customization", "output", "initial_policies")

	c.Name = root.Require("name").String("")
	if name := root.Get("name"); name.Present() && !validName.MatchString(c.Name) {
		name.Errorf("%q: use only letters, digits, '-' and '_' (the name becomes part of the experiment id and bus subjects)", c.Name)
	}
	c.Description = root.Get("description").String("")
	c.MasterSeed = root.Get("master_seed").Int64(42)

	sc := root.Require("scenario")
	c.Scenario = sc.String("")
	if c.Scenario != "" {
		c.ScenarioPath = resolve(dir, c.Scenario)
		if data, err := yamlfile.ReadLimited(c.ScenarioPath); errors.Is(err, fs.ErrNotExist) {
			sc.Errorf("scenario file %s not found (the path is relative to the experiment file)", c.ScenarioPath)
		} else if err != nil {
			sc.Errorf("scenario file: %v", err)
		} else {
			c.ScenarioContent = string(data)
		}
	} else if sc.Present() {
		sc.Errorf("must name the scenario file")
	}

	c.readEvaluation(root.Require("evaluation").Map())
	c.readConvergence(root.Require("convergence").Map())
	c.readLLM(root.Require("llm").Map(), dir)

	agents := root.Require("optimized_agents")
	seen := map[string]bool{}
	list := agents.List()
	if agents.Present() && list != nil && len(list) == 0 {
		agents.Errorf("must list at least one agent")
	}
	for _, a := range list {
		id := a.String("")
		if id == "" {
			a.Errorf("agent id must not be empty")
			continue
		}
		if seen[id] {
			a.Errorf("agent %s is listed twice", id)
			continue
		}
		seen[id] = true
		c.OptimizedAgents = append(c.OptimizedAgents, id)
		c.where["optimized_agents:"+id] = a.At("")
	}

	if pc := root.Get("policy_constraints"); pc.Present() {
		c.PolicyConstraints = readConstraints(pc.Map())
	}
	c.readCustomization(root.Get("prompt_customization"))
	c.readInitialPolicies(root.Get("initial_policies").Map(), dir)

	c.Output = OutputConfig{Directory: "results", Database: "experiments.db"}
	if out := root.Get("output"); out.Present() {
		m := out.Map()
		m.Known("directory", "database", "verbose")
		c.HasOutput = true
		c.Output.Directory = m.Get("directory").String(c.Output.Directory)
		c.Output.Database = m.Get("database").String(c.Output.Database)
		c.Output.Verbose = m.Get("verbose").Bool(false)
	}
}

func (c *Config) readEvaluation(m yamlfile.Map) {
	m.Known("mode", "num_samples", "ticks", "acceptance")
	mode := m.Get("mode")
	c.Evaluation.Mode = mode.String(ModeBootstrap)
	switch c.Evaluation.Mode {
	case ModeBootstrap, ModeDeterministic, ModeTemporal:
	case "deterministic-pairwise":
		c.Evaluation.Mode = ModeDeterministic
	default:
		mode.Errorf("unknown mode %q: use bootstrap, deterministic, deterministic-pairwise or deterministic-temporal", c.Evaluation.Mode)
	}
	ns := m.Get("num_samples")
	if c.Evaluation.NumSamples = ns.Int(10); c.Evaluation.NumSamples < 1 || c.Evaluation.NumSamples > MaxSamples {
		ns.Errorf("must be from 1 to %d, got %d", MaxSamples, c.Evaluation.NumSamples)
		c.Evaluation.NumSamples = 1
	}
	ticks := m.Require("ticks")
	if c.Evaluation.Ticks = ticks.Int(0); ticks.Present() && (c.Evaluation.Ticks < 1 || c.Evaluation.Ticks > MaxEvalTicks) {
		ticks.Errorf("must be from 1 to %d, got %d", MaxEvalTicks, c.Evaluation.Ticks)
		c.Evaluation.Ticks = 1
	}
	acc := m.Get("acceptance").Map()
	acc.Known("require_statistical_significance", "max_coefficient_of_variation")
	c.Evaluation.Acceptance.RequireStatisticalSignificance = acc.Get("require_statistical_significance").Bool(false)
	if cv := acc.Get("max_coefficient_of_variation"); cv.Present() {
		f := cv.Float(0)
		if f <= 0 {
			cv.Errorf("must be above 0, got %g", f)
		}
		c.Evaluation.Acceptance.MaxCoefficientOfVariation = &f
	}
}

func (c *Config) readConvergence(m yamlfile.Map) {
	m.Known("max_iterations", "stability_threshold", "stability_window", "cv_threshold",
		"regret_threshold", "improvement_threshold")
	cc := &c.Convergence
	cc.MaxIterations = m.Get("max_iterations").IntAtLeast(50, 1)
	cc.StabilityWindow = m.Get("stability_window").IntAtLeast(5, 1)
	cc.StabilityThreshold = m.Get("stability_threshold").FloatAtLeast(0.05, 0)
	cc.CVThreshold = m.Get("cv_threshold").FloatAtLeast(0.03, 0)
	cc.RegretThreshold = m.Get("regret_threshold").FloatAtLeast(0.10, 0)
	cc.ImprovementThreshold = m.Get("improvement_threshold").FloatAtLeast(0.01, 0)
}

func (c *Config) readLLM(m yamlfile.Map, dir string) {
	m.Known("model", "temperature", "max_retries", "timeout_seconds", "reasoning_effort", "thinking_budget",
		"system_prompt", "system_prompt_file", "base_url", "max_tokens")
	l := &c.LLM
	model := m.Require("model")
	l.Model = model.String("")
	if model.Present() {
		if err := l.setModel(l.Model); err != nil {
			model.Errorf("%v", err)
		}
	}
	temp := m.Get("temperature")
	if l.Temperature = temp.Float(0); l.Temperature < 0 {
		temp.Errorf("must not be negative, got %g", l.Temperature)
	}
	l.MaxRetries = m.Get("max_retries").IntAtLeast(3, 1)
	to := m.Get("timeout_seconds")
	if l.TimeoutSeconds = to.Float(120); l.TimeoutSeconds <= 0 {
		to.Errorf("must be above 0, got %g", l.TimeoutSeconds)
	}
	l.ReasoningEffort = m.Get("reasoning_effort").String("")
	l.ThinkingBudget = m.Get("thinking_budget").IntAtLeast(0, 0)
	l.BaseURL = m.Get("base_url").String("")
	l.MaxTokens = m.Get("max_tokens").IntAtLeast(0, 0)
	l.SystemPrompt = m.Get("system_prompt").String("")
	if f := m.Get("system_prompt_file"); f.Present() {
		l.SystemPromptFile = f.String("")
		if l.SystemPrompt != "" {
			f.Errorf("give system_prompt or system_prompt_file, not both")
		} else if l.SystemPromptFile != "" {
			b, err := yamlfile.ReadLimited(resolve(dir, l.SystemPromptFile))
			if err != nil {
				f.Errorf("cannot read system prompt file (the path is relative to the experiment file): %v", err)
			}
			l.SystemPrompt = string(b)
		}
	}
}

// Timeout is timeout_seconds as a duration.
func (l LLMConfig) Timeout() time.Duration {
	return time.Duration(l.TimeoutSeconds * float64(time.Second))
}

// setModel checks and splits a "provider:model" string.
func (l *LLMConfig) setModel(s string) error {
	provider, name, ok := strings.Cut(s, ":")
	switch {
	case !ok || provider == "" || name == "":
		return fmt.Errorf("model %q must be provider:model, e.g. openai:gpt-5.2 or builtin:search", s)
	case !slices.Contains(providers, provider):
		return fmt.Errorf("unknown provider %q in model %q: use one of %s", provider, s, strings.Join(providers, ", "))
	case provider == "builtin" && name != "search":
		return fmt.Errorf("unknown built-in optimizer %q: the only one is builtin:search", s)
	}
	l.Model, l.Provider, l.ModelName = s, provider, name
	return nil
}

func readConstraints(m yamlfile.Map) *PolicyConstraints {
	m.Known("allowed_parameters", "allowed_fields", "allowed_actions")
	pc := &PolicyConstraints{}
	names := map[string]bool{}
	for _, v := range m.Get("allowed_parameters").List() {
		pm := v.Map()
		pm.Known("name", "param_type", "min_value", "max_value", "allowed_values", "description")
		p := AllowedParameter{
			Name:        pm.Require("name").String(""),
			ParamType:   pm.Get("param_type").String("float"),
			Description: pm.Get("description").String(""),
		}
		if p.Name != "" && names[p.Name] {
			pm.Get("name").Errorf("parameter %s is listed twice", p.Name)
		}
		names[p.Name] = true
		if mv := pm.Get("min_value"); mv.Present() {
			f := mv.Float(0)
			p.MinValue = &f
		}
		if mv := pm.Get("max_value"); mv.Present() {
			f := mv.Float(0)
			p.MaxValue = &f
		}
		if p.MinValue != nil && p.MaxValue != nil && *p.MinValue > *p.MaxValue {
			pm.Get("min_value").Errorf("min_value %g is above max_value %g", *p.MinValue, *p.MaxValue)
		}
		if av := pm.Get("allowed_values"); av.Present() {
			if av.Decode(&p.AllowedValues) && len(p.AllowedValues) == 0 {
				av.Errorf("must list at least one value")
			}
		}
		switch p.ParamType {
		case "int", "float":
		case "enum":
			if !pm.Has("allowed_values") {
				pm.Require("allowed_values")
			}
		default:
			pm.Get("param_type").Errorf("unknown param_type %q: use int, float or enum", p.ParamType)
		}
		pc.AllowedParameters = append(pc.AllowedParameters, p)
	}
	for _, v := range m.Get("allowed_fields").List() {
		f := v.String("")
		if _, ok := policy.FieldByName(f); !ok && !policy.IsStateKey(f) {
			v.Errorf("unknown context field %q", f)
			continue
		}
		pc.AllowedFields = append(pc.AllowedFields, f)
	}
	if acts := m.Get("allowed_actions"); acts.Present() {
		pc.AllowedActions = map[string][]string{}
		acts.Map().Each(func(name string, v yamlfile.Value) {
			tree, ok := policy.TreeByName(name)
			if !ok {
				v.Errorf("unknown tree %q: use payment_tree, bank_tree, strategic_collateral_tree or end_of_tick_collateral_tree", name)
				return
			}
			list := []string{}
			for _, a := range v.List() {
				s := a.String("")
				if k, ok := policy.ActionKindByName(s); !ok || !k.LegalIn(tree) {
					a.Errorf("action %q is not allowed in %s", s, name)
					continue
				}
				list = append(list, s)
			}
			pc.AllowedActions[name] = list
		})
	}
	return pc
}

func (c *Config) readCustomization(v yamlfile.Value) {
	if !v.Present() {
		return
	}
	c.PromptCustomization = map[string]string{}
	if v.IsScalar() {
		// A bare text applies to every agent.
		c.PromptCustomization["all"] = v.String("")
		return
	}
	v.Map().Each(func(key string, t yamlfile.Value) {
		c.PromptCustomization[key] = t.String("")
		if key != "all" {
			c.where["prompt_customization:"+key] = t.At("")
		}
	})
}

func (c *Config) readInitialPolicies(m yamlfile.Map, dir string) {
	m.Each(func(agent string, v yamlfile.Value) {
		if c.InitialPolicies == nil {
			c.InitialPolicies = map[string]json.RawMessage{}
		}
		c.where["initial_policies:"+agent] = v.At("")
		var raw []byte
		switch {
		case v.IsMap():
			var obj map[string]any
			if !v.Decode(&obj) {
				return
			}
			b, err := json.Marshal(obj)
			if err != nil {
				v.Errorf("cannot convert the policy to JSON: %v", err)
				return
			}
			raw = b
		case v.IsScalar():
			s := strings.TrimSpace(v.String(""))
			if strings.HasPrefix(s, "{") {
				raw = []byte(s)
			} else {
				b, err := yamlfile.ReadLimited(resolve(dir, s))
				if err != nil {
					v.Errorf("cannot read policy file (the path is relative to the experiment file): %v", err)
					return
				}
				raw = b
			}
		default:
			v.Errorf("must be a policy object or the path of a policy JSON file")
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			v.Errorf("policy is not a JSON object: %v", err)
			return
		}
		c.InitialPolicies[agent] = json.RawMessage(raw)
	})
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Validate checks the agent names against the scenario's agent ids:
// optimized_agents, initial_policies and per-agent prompt_customization
// keys must all be agents of the scenario.
func (c *Config) Validate(agentIDs []string) error {
	var errs []error
	check := func(section string, ids []string) {
		for _, id := range ids {
			if slices.Contains(agentIDs, id) {
				continue
			}
			e := &yamlfile.Error{File: c.File, Field: section, Msg: fmt.Sprintf(
				"agent %s is not in the scenario (its agents: %s)", id, strings.Join(agentIDs, ", "))}
			if w := c.where[section+":"+id]; w != nil {
				e.Line, e.Column, e.Field = w.Line, w.Column, w.Field
			}
			errs = append(errs, e)
		}
	}
	check("optimized_agents", c.OptimizedAgents)
	check("initial_policies", sortedKeys(c.InitialPolicies))
	var custom []string
	for _, k := range sortedKeys(c.PromptCustomization) {
		if k != "all" {
			custom = append(custom, k)
		}
	}
	check("prompt_customization", custom)
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Customization returns the prompt customization for agent: the "all" text
// and the agent's own text, joined with a blank line.
func (c *Config) Customization(agent string) string {
	var parts []string
	for _, k := range []string{"all", agent} {
		if t := strings.TrimSpace(c.PromptCustomization[k]); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "\n\n")
}

// Constraints converts policy_constraints to the optimizer's form; without
// a policy_constraints section it is empty.
func (c *Config) Constraints() optimizer.Constraints {
	if c.PolicyConstraints == nil {
		return optimizer.Constraints{}
	}
	pc := c.PolicyConstraints
	out := optimizer.Constraints{Fields: pc.AllowedFields, Actions: pc.AllowedActions}
	for _, p := range pc.AllowedParameters {
		out.Parameters = append(out.Parameters, optimizer.AllowedParameter{
			Name: p.Name, Type: p.ParamType, Min: p.MinValue, Max: p.MaxValue,
			AllowedValues: p.AllowedValues, Description: p.Description,
		})
	}
	return out
}

// DatabasePath is where results are persisted: output.database inside
// output.directory (an absolute database path stands alone).
func (c *Config) DatabasePath() string {
	if c.Output.Directory == "" || filepath.IsAbs(c.Output.Database) {
		return c.Output.Database
	}
	return filepath.Join(c.Output.Directory, c.Output.Database)
}

// ResolvedJSON is the full config after defaults and overrides, master seed
// included, as recorded with the experiment.
func (c *Config) ResolvedJSON() json.RawMessage {
	type resolved struct {
		*Config
		Output *OutputConfig `json:"output,omitempty"`
	}
	cp := *c
	cp.LLM.BaseURL = RedactURL(c.LLM.BaseURL) // stored and published: no secrets
	r := resolved{Config: &cp}
	if c.HasOutput {
		r.Output = &c.Output
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Every field is plain data decoded from YAML or JSON.
		panic(fmt.Sprintf("experiment: encode resolved config: %v", err))
	}
	return b
}

// Hash is the SHA-256 (hex) of ResolvedJSON, identifying the configuration.
// The output section is left out: where results are stored does not change
// what the experiment is, so runs writing to different databases compare.
func (c *Config) Hash() string {
	cp := *c
	cp.HasOutput = false
	sum := sha256.Sum256(cp.ResolvedJSON())
	return hex.EncodeToString(sum[:])
}

// Input limits of the evaluation section: far beyond real use, low enough
// that a typo is an error at load time rather than an exhausted machine.
const (
	MaxSamples   = 100_000
	MaxEvalTicks = 1_000_000
)

// Overrides are command-line settings that replace the file's.
type Overrides struct {
	Seed          *int64
	Model         string // provider:model
	MaxIterations int    // 0 keeps the file's
	DB            string // database path; turns persistence on
}

// ApplyOverrides replaces settings with the command line's.
func (c *Config) ApplyOverrides(o Overrides) error {
	if o.Seed != nil {
		c.MasterSeed = *o.Seed
	}
	if o.Model != "" {
		if err := c.LLM.setModel(o.Model); err != nil {
			return fmt.Errorf("--model: %w", err)
		}
	}
	if o.MaxIterations < 0 {
		return fmt.Errorf("--max-iterations must be at least 1, got %d", o.MaxIterations)
	}
	if o.MaxIterations > 0 {
		c.Convergence.MaxIterations = o.MaxIterations
	}
	if o.DB != "" {
		c.HasOutput = true
		c.Output.Directory = ""
		c.Output.Database = o.DB
	}
	return nil
}

// ErrNoScenarioContent is returned by FromRecorded for a run recorded before
// scenario contents were stored with the config.
var ErrNoScenarioContent = errors.New("the recorded config holds no scenario content (stored by an older simcash)")

// FromRecorded rebuilds a config from the JSON recorded with an experiment
// (ResolvedJSON), so a stored run can be repeated after its files changed.
// The scenario is ScenarioContent; its warnings and errors name Scenario.
func FromRecorded(raw json.RawMessage) (*Config, error) {
	c := &Config{where: map[string]*yamlfile.Error{}}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("recorded config: %w", err)
	}
	var out struct {
		Output *OutputConfig `json:"output"`
	}
	if err := json.Unmarshal(raw, &out); err == nil && out.Output != nil {
		c.HasOutput = true
	}
	if err := c.LLM.setModel(c.LLM.Model); err != nil {
		return nil, fmt.Errorf("recorded config: llm.model: %w", err)
	}
	if c.ScenarioContent == "" {
		return nil, ErrNoScenarioContent
	}
	if n := c.Evaluation.NumSamples; n < 1 || n > MaxSamples {
		return nil, fmt.Errorf("recorded config: evaluation.num_samples must be from 1 to %d, got %d", MaxSamples, n)
	}
	if t := c.Evaluation.Ticks; t < 0 || t > MaxEvalTicks {
		return nil, fmt.Errorf("recorded config: evaluation.ticks must be from 1 to %d, got %d", MaxEvalTicks, t)
	}
	c.File = "recorded config of " + c.Name
	c.ScenarioPath = c.Scenario
	return c, nil
}

// secretParams are query parameters that carry credentials.
var secretParams = []string{"key", "api_key", "apikey", "api-key", "token", "access_token", "password", "secret", "sig"}

// RedactURL masks the password of a URL's user info and the values of
// query parameters that carry credentials, so the URL can be stored,
// published and shown. Text that is not a URL is returned as it is.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return s
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
			changed = true
		}
	}
	q := u.Query()
	for k := range q {
		if slices.Contains(secretParams, strings.ToLower(k)) {
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if !changed {
		return s
	}
	u.RawQuery = q.Encode()
	return u.String()
}
