package analysis

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// GroupKey identifies a run's configuration apart from its seed and where
// its results went: runs with one key differ only by master seed.
func GroupKey(r *Run) string {
	m := r.Config()
	delete(m, "master_seed")
	delete(m, "output")
	b, _ := json.Marshal(m) // map keys are sorted: canonical
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// GroupRuns splits runs by GroupKey, keeping the order of first appearance.
func GroupRuns(runs []*Run) [][]*Run {
	var keys []string
	by := map[string][]*Run{}
	for _, r := range runs {
		k := GroupKey(r)
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], r)
	}
	out := make([][]*Run, len(keys))
	for i, k := range keys {
		out[i] = by[k]
	}
	return out
}

// RunSummary is one run's column of a comparison. Costs are cents.
type RunSummary struct {
	ID               string                        `json:"experiment_id"`
	Name             string                        `json:"experiment_name"`
	Status           string                        `json:"status"`
	Seed             int64                         `json:"master_seed"`
	Model            string                        `json:"model"`
	Iterations       int                           `json:"num_iterations"`
	Converged        bool                          `json:"converged"`
	Reason           string                        `json:"convergence_reason"`
	FinalCost        *int64                        `json:"final_cost"`
	AgentCosts       map[string]int64              `json:"agent_final_costs"`
	FinalParams      map[string]map[string]float64 `json:"final_parameters"`
	LLMCalls         int64                         `json:"llm_calls"`
	PromptTokens     int64                         `json:"prompt_tokens"`
	CompletionTokens int64                         `json:"completion_tokens"`
	Group            string                        `json:"group"` // GroupKey
}

// ConfigDiff is one configuration key whose value differs between runs,
// with its value in each run ("-" where a run lacks it).
type ConfigDiff struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// Group summarizes the runs of one configuration: n, mean, standard
// deviation and 95% interval of each final cost and final parameter.
type Group struct {
	Key        string                        `json:"group"`
	Name       string                        `json:"experiment_name"`
	Runs       []string                      `json:"runs"`
	Seeds      []int64                       `json:"seeds"`
	FinalCost  Summary                       `json:"final_cost"`  // cents
	AgentCosts map[string]Summary            `json:"agent_costs"` // cents
	Params     map[string]map[string]Summary `json:"final_parameters"`
	Iterations Summary                       `json:"num_iterations"`
	Converged  int                           `json:"converged"` // how many runs converged
}

// Comparison is what `results compare` shows.
type Comparison struct {
	Runs   []RunSummary `json:"runs"`
	Config []ConfigDiff `json:"config_differences"`
	Groups []Group      `json:"groups,omitempty"`
}

// Compare puts runs side by side; with grouped it also summarizes each
// configuration's runs (GroupRuns). Runs that have not completed count in
// no statistic.
func Compare(runs []*Run, grouped bool) *Comparison {
	c := &Comparison{Runs: []RunSummary{}, Config: []ConfigDiff{}}
	for _, r := range runs {
		d := r.Detail
		s := RunSummary{ID: d.ExperimentID, Name: d.ExperimentName, Status: d.Status, Seed: d.MasterSeed, Model: d.Model,
			Iterations: d.NumIterations, Converged: d.Converged, Reason: d.ConvergenceReason, FinalCost: d.FinalCost,
			AgentCosts: d.AgentFinalCosts, FinalParams: finalParams(r), LLMCalls: d.LLMCalls,
			PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens, Group: GroupKey(r)}
		c.Runs = append(c.Runs, s)
	}
	c.Config = configDiffs(runs)
	if grouped {
		for _, g := range GroupRuns(runs) {
			c.Groups = append(c.Groups, summarizeGroup(g))
		}
	}
	return c
}

func finalParams(r *Run) map[string]map[string]float64 {
	var pols map[string]json.RawMessage
	out := map[string]map[string]float64{}
	if json.Unmarshal(r.Detail.FinalPolicies, &pols) != nil {
		return out
	}
	for a, doc := range pols {
		out[a] = r.paramsOf(doc)
	}
	return out
}

func summarizeGroup(g []*Run) Group {
	out := Group{Key: GroupKey(g[0]), Name: g[0].Detail.ExperimentName, AgentCosts: map[string]Summary{},
		Params: map[string]map[string]Summary{}}
	var total, iters []float64
	agentCosts := map[string][]float64{}
	params := map[string]map[string][]float64{}
	for _, r := range g {
		d := r.Detail
		out.Runs = append(out.Runs, d.ExperimentID)
		out.Seeds = append(out.Seeds, d.MasterSeed)
		if d.FinalCost == nil { // not completed
			continue
		}
		total = append(total, float64(*d.FinalCost))
		iters = append(iters, float64(d.NumIterations))
		if d.Converged {
			out.Converged++
		}
		for a, v := range d.AgentFinalCosts {
			agentCosts[a] = append(agentCosts[a], float64(v))
		}
		for a, ps := range finalParams(r) {
			if params[a] == nil {
				params[a] = map[string][]float64{}
			}
			for k, v := range ps {
				params[a][k] = append(params[a][k], v)
			}
		}
	}
	out.FinalCost, out.Iterations = Summarize(total), Summarize(iters)
	for a, vs := range agentCosts {
		out.AgentCosts[a] = Summarize(vs)
	}
	for a, ps := range params {
		out.Params[a] = map[string]Summary{}
		for k, vs := range ps {
			out.Params[a][k] = Summarize(vs)
		}
	}
	return out
}

// configDiffs lists the flattened config keys whose values differ.
func configDiffs(runs []*Run) []ConfigDiff {
	flat := make([]map[string]string, len(runs))
	keys := map[string]bool{}
	for i, r := range runs {
		flat[i] = map[string]string{}
		flatten("", r.Config(), flat[i])
		for k := range flat[i] {
			keys[k] = true
		}
	}
	out := []ConfigDiff{}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		vals := make([]string, len(runs))
		same := true
		for i := range runs {
			v, ok := flat[i][k]
			if !ok {
				v = "-"
			}
			vals[i] = v
			same = same && v == vals[0]
		}
		if !same {
			out = append(out, ConfigDiff{Key: k, Values: vals})
		}
	}
	return out
}

// flatten writes v's leaves as dotted keys; long texts (the scenario, prompts)
// are shown by length and hash.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(prefix, k), e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "[]"
		}
		for i, e := range x {
			flatten(join(prefix, strconv.Itoa(i)), e, out)
		}
	case string:
		if len(x) > 80 || strings.Contains(x, "\n") {
			sum := sha256.Sum256([]byte(x))
			out[prefix] = fmt.Sprintf("(%d bytes, sha256 %s)", len(x), hex.EncodeToString(sum[:4]))
			return
		}
		out[prefix] = x
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func sortedStrings(s []string) []string { slices.Sort(s); return s }
