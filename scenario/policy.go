package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"simcash/policy"
	"simcash/yamlfile"
)

// policy resolves an agent's policy: section; absent means Fifo.
func (l *loader) policy(agent string, v yamlfile.Value) *policy.Policy {
	if !v.Present() {
		return l.builtin(v, "Fifo", nil)
	}
	m := v.Map()
	t := m.Get("type")
	name := t.String("")
	if !t.Present() {
		v.Warnf("policy has no type: read as Fifo, as SimCash does")
		name = "Fifo"
		t = v
	}
	var p *policy.Policy
	switch name {
	case "Fifo":
		m.Known("type", "params")
		p = l.builtin(t, name, nil)
	case "Deadline":
		m.Known("type", "urgency_threshold", "params")
		p = l.builtin(t, name, inlineParams(m, "urgency_threshold"))
	case "LiquidityAware":
		m.Known("type", "target_buffer", "urgency_threshold", "params")
		p = l.builtin(t, name, inlineParams(m, "target_buffer", "urgency_threshold"))
	case "FromJson":
		m.Known("type", "json_path", "params")
		p = l.fromFile(agent, m.Require("json_path"))
	case "Inline":
		m.Known("type", "decision_trees", "params")
		p = l.inline(m.Require("decision_trees"))
	case "InlineJson":
		// SimCash names the field json_string; json is accepted as shorthand.
		m.Known("type", "json_string", "json", "params")
		js := m.Get("json_string")
		if j := m.Get("json"); j.Present() {
			if js.Present() {
				j.Errorf("give json_string or json, not both")
			}
			js = j
		} else if !js.Present() {
			js = m.Require("json_string")
		}
		if s := js.String(""); js.Present() {
			p = parsePolicy(js, []byte(s), "inline JSON policy")
		}
	case "LiquiditySplitting":
		m.Known("type", "max_splits", "min_split_amount", "params")
		p = l.builtin(t, name, inlineParams(m, "max_splits", "min_split_amount"))
	case "MockSplitting":
		m.Known("type", "num_splits", "params")
		p = l.builtin(t, name, inlineParams(m, "num_splits"))
	case "":
	default:
		t.Errorf("unknown policy type %q; use Fifo, Deadline, LiquidityAware, LiquiditySplitting, MockSplitting, FromJson, Inline or InlineJson", name)
	}
	if p == nil {
		return nil
	}
	if pv := m.Get("params"); pv.Present() {
		params := map[string]float64{}
		pv.Map().Each(func(k string, x yamlfile.Value) { params[k] = x.Float(0) })
		p = withParams(pv, p, params)
	}
	if p != nil {
		for _, w := range p.Warnings() {
			v.Warnf("%s", w)
		}
	}
	return p
}

// inlineParams reads the builtin policies' parameters written directly in
// the policy: mapping (SimCash's Deadline{urgency_threshold} form).
func inlineParams(m yamlfile.Map, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		if v := m.Get(n); v.Present() {
			out[n] = v.FloatAtLeast(0, 0)
		}
	}
	return out
}

func (l *loader) builtin(at yamlfile.Value, name string, params map[string]float64) *policy.Policy {
	p, err := policy.Builtin(name)
	if err != nil {
		at.Errorf("builtin policy %s: %v", name, err)
		return nil
	}
	if len(params) > 0 {
		return withParams(at, p, params)
	}
	return p
}

func withParams(at yamlfile.Value, p *policy.Policy, params map[string]float64) *policy.Policy {
	q, err := p.WithParams(params)
	if err != nil {
		at.Errorf("policy parameters: %v", err)
		return nil
	}
	return q
}

func parsePolicy(at yamlfile.Value, data []byte, what string) *policy.Policy {
	p, err := policy.Parse(data)
	if err != nil {
		at.Errorf("%s is invalid: %v", what, err)
		return nil
	}
	return p
}

func (l *loader) inline(v yamlfile.Value) *policy.Policy {
	if !v.Present() {
		return nil
	}
	if !v.IsMap() {
		v.Errorf("want the policy document as a mapping (version, policy_id, parameters, payment_tree, ...)")
		return nil
	}
	var doc map[string]any
	if !v.Decode(&doc) {
		return nil
	}
	data, err := json.Marshal(doc)
	if err != nil {
		v.Errorf("cannot convert the inline policy to JSON: %v", err)
		return nil
	}
	return parsePolicy(v, data, "inline policy")
}

func (l *loader) fromFile(agent string, v yamlfile.Value) *policy.Policy {
	rel := v.String("")
	if rel == "" {
		if v.Present() {
			v.Errorf("json_path must not be empty")
		}
		return nil
	}
	path, where := l.findPolicyFile(rel)
	if path == "" {
		v.Errorf("policy file %q not found; looked for %s", rel, where)
		return nil
	}
	l.log.Debug("scenario: policy file resolved", "agent", agent, "json_path", rel, "path", path)
	data, err := yamlfile.ReadLimited(path)
	if err != nil {
		v.Errorf("read policy file %s: %v", path, err)
		return nil
	}
	return parsePolicy(v, data, "policy file "+path)
}

// findPolicyFile resolves a FromJson path. SimCash files name paths relative
// to the SimCash repository root (simulator/policies/x.json), so after the
// path as given (absolute, or relative to the scenario's directory), leading
// components are dropped one by one and the rest is tried against the
// scenario's directory and each of its ancestors; last, the base name in
// each Options.PolicyDirs. It returns the path found, or "" and a
// description of where it looked.
func (l *loader) findPolicyFile(rel string) (string, string) {
	ok := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular()
	}
	var where []string
	if filepath.IsAbs(rel) {
		if ok(rel) {
			return filepath.Clean(rel), ""
		}
		where = append(where, filepath.Clean(rel))
	} else {
		parts := strings.Split(filepath.ToSlash(filepath.Clean(rel)), "/")
		dirs := ancestors(l.dir)
		var suffixes []string
		for k := range parts {
			suffix := filepath.Join(parts[k:]...)
			suffixes = append(suffixes, suffix)
			for _, d := range dirs {
				if p := filepath.Join(d, suffix); ok(p) {
					return p, ""
				}
			}
		}
		where = append(where, fmt.Sprintf("%s in %s and each directory above it", strings.Join(suffixes, ", "), dirs[0]))
	}
	if len(l.opts.PolicyDirs) > 0 {
		base := filepath.Base(rel)
		for _, d := range l.opts.PolicyDirs {
			if p := filepath.Join(d, base); ok(p) {
				return p, ""
			}
		}
		where = append(where, fmt.Sprintf("%s in the policy directories %s", base, strings.Join(l.opts.PolicyDirs, ", ")))
	}
	return "", strings.Join(where, "; then ")
}

// ancestors returns dir (made absolute) and its parents up to the root.
func ancestors(dir string) []string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return []string{dir}
	}
	var out []string
	for {
		out = append(out, abs)
		parent := filepath.Dir(abs)
		if parent == abs {
			return out
		}
		abs = parent
	}
}
