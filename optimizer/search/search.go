// Package search implements builtin:search, a deterministic offline
// optimizer that tunes a policy's numeric and enum parameters by coordinate
// search with bracketing. It keeps no state between calls: everything it
// knows comes from the request's current policy and the agent's history, so
// a resumed or replayed run proposes the same values.
package search

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"simcash/optimizer"
)

// Resolution is the fraction of a parameter's range below which two values
// count as the same and a bracket counts as exhausted.
const Resolution = 0.001

// Searcher is the builtin:search optimizer.
type Searcher struct{}

// New returns the builtin:search optimizer.
func New() optimizer.Optimizer { return Searcher{} }

// Propose returns the current policy with exactly one parameter changed, or
// the current policy unchanged when nothing is left to try.
//
// For each allowed parameter in order it looks along that coordinate for a
// value not yet tried at the current point. Known-worse points are rejected
// proposals and policies that were later replaced by a cheaper one. On each
// side of the current value it first probes the bound (cheap liquidity
// optima often sit on a bound), then bisects between the current value and
// the nearest known-worse value, which homes in on cliffs such as "below
// 0.2 the second payment cannot be paid". After an accepted move it keeps
// that direction; after a rejection it tries the other side, so both
// brackets shrink together; at the start it goes downwards, since holding
// less liquidity is what usually saves cost.
func (Searcher) Propose(_ context.Context, req optimizer.Request) (optimizer.Proposal, error) {
	unchanged := optimizer.Proposal{Policy: req.CurrentPolicy}
	// A rejected attempt in this retry loop would be proposed again by a
	// deterministic search; keeping the current policy is the safe answer.
	if len(req.PreviousErrors) > 0 {
		return unchanged, nil
	}
	current, err := parameters(req.CurrentPolicy)
	if err != nil {
		return optimizer.Proposal{}, fmt.Errorf("builtin:search: current policy of %s: %w", req.Agent, err)
	}
	worse, lastMove := knownWorse(req.History)

	for _, p := range req.Constraints.Parameters {
		v, ok := next(p, current, worse, preferredDirection(p.Name, current, req.History, lastMove[p.Name]))
		if !ok {
			continue
		}
		policy, err := withParameter(req.CurrentPolicy, p.Name, v)
		if err != nil {
			return optimizer.Proposal{}, fmt.Errorf("builtin:search: %w", err)
		}
		return optimizer.Proposal{Policy: policy}, nil
	}
	return unchanged, nil
}

// point is a full parameter assignment.
type point map[string]any

// knownWorse collects the parameter points known to be worse than some later
// policy, and the sign of the last accepted move per parameter.
func knownWorse(history []optimizer.HistoryEntry) ([]point, map[string]int) {
	var worse []point
	lastMove := map[string]int{}
	var prevAccepted point
	for _, h := range history {
		p := entryPoint(h)
		if p == nil {
			continue
		}
		if !h.Accepted {
			worse = append(worse, p)
			continue
		}
		if prevAccepted != nil {
			worse = append(worse, prevAccepted)
			for name, v := range p {
				a, aok := toFloat(v)
				b, bok := toFloat(prevAccepted[name])
				if aok && bok && a != b {
					lastMove[name] = sign(a - b)
				}
			}
		}
		prevAccepted = p
	}
	return worse, lastMove
}

// preferredDirection is +1 or -1: the side of the current value to try
// first for parameter name.
func preferredDirection(name string, current point, history []optimizer.HistoryEntry, lastMove int) int {
	x, ok := toFloat(current[name])
	if !ok {
		return -1
	}
	for i := len(history) - 1; i >= 0; i-- {
		h := history[i]
		p := entryPoint(h)
		if p == nil || !sameExcept(p, current, name) {
			continue
		}
		// The latest probe along this coordinate was rejected: try the
		// other side next.
		if v, ok := toFloat(p[name]); ok && !h.Accepted && v != x {
			return -sign(v - x)
		}
		break
	}
	if lastMove > 0 {
		return 1
	}
	return -1
}

// entryPoint reads a history entry's parameters, preferring the policy
// document (it can hold enum strings) over the numeric Params map.
func entryPoint(h optimizer.HistoryEntry) point {
	if len(h.Policy) > 0 {
		if p, err := parameters(h.Policy); err == nil && len(p) > 0 {
			return p
		}
	}
	if len(h.Params) == 0 {
		return nil
	}
	p := point{}
	for k, v := range h.Params {
		p[k] = v
	}
	return p
}

// next proposes a new value for parameter p, or false when its coordinate
// is exhausted at the current point.
func next(p optimizer.AllowedParameter, current point, worse []point, prefer int) (any, bool) {
	// Only points that differ from the current one in this coordinate alone
	// tell us anything about it.
	var seen []any
	for _, w := range worse {
		if sameExcept(w, current, p.Name) {
			if v, ok := w[p.Name]; ok {
				seen = append(seen, v)
			}
		}
	}
	switch p.Type {
	case "enum":
		cur, hasCur := current[p.Name]
		for _, v := range p.AllowedValues {
			if hasCur && equalValue(v, cur) || containsValue(seen, v) {
				continue
			}
			return v, true
		}
		return nil, false
	case "int", "float":
	default:
		return nil, false
	}

	lo, hi, x := numericRange(p, current)
	isInt := p.Type == "int"
	res := Resolution * (hi - lo)
	if isInt {
		res = math.Max(res, 1)
	}
	var below, above []float64
	for _, s := range seen {
		if f, ok := toFloat(s); ok {
			if f < x {
				below = append(below, f)
			} else if f > x {
				above = append(above, f)
			}
		}
	}
	dirs := []int{-1, 1}
	if prefer > 0 {
		dirs = []int{1, -1}
	}
	for _, d := range dirs {
		var cand float64
		if d < 0 {
			if x-lo <= res {
				continue
			}
			worst, ok := maxOf(below)
			if !ok {
				cand = lo
			} else if x-worst <= res {
				continue
			} else if isInt {
				cand = math.Floor((worst + x) / 2)
			} else {
				cand = (worst + x) / 2
			}
		} else {
			if hi-x <= res {
				continue
			}
			worst, ok := minOf(above)
			if !ok {
				cand = hi
			} else if worst-x <= res {
				continue
			} else if isInt {
				cand = math.Ceil((worst + x) / 2)
			} else {
				cand = (worst + x) / 2
			}
		}
		if isInt {
			return int64(cand), true
		}
		return tidy(cand), true
	}
	return nil, false
}

// numericRange returns the search bounds and the current value. A missing
// bound is replaced by one a unit (or the value's magnitude) beyond the
// current value, so unbounded parameters still get a finite first probe.
func numericRange(p optimizer.AllowedParameter, current point) (lo, hi, x float64) {
	cur, hasCur := toFloat(current[p.Name])
	switch {
	case hasCur:
		x = cur
	case p.Min != nil && p.Max != nil:
		x = (*p.Min + *p.Max) / 2
	case p.Min != nil:
		x = *p.Min
	case p.Max != nil:
		x = *p.Max
	}
	span := math.Max(math.Abs(x), 1)
	lo, hi = x-span, x+span
	if p.Min != nil {
		lo = *p.Min
	}
	if p.Max != nil {
		hi = *p.Max
	}
	return lo, hi, x
}

// tidy rounds away binary noise (0.30000000000000004) so proposals read
// cleanly; 1e-12 is far below any search resolution.
func tidy(f float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64)
	if err != nil {
		return f
	}
	return r
}

func sameExcept(a, b point, name string) bool {
	for k, v := range b {
		if k == name {
			continue
		}
		if w, ok := a[k]; !ok || !equalValue(v, w) {
			return false
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok && k != name {
			return false
		}
	}
	return true
}

func containsValue(vs []any, v any) bool {
	for _, w := range vs {
		if equalValue(v, w) {
			return true
		}
	}
	return false
}

// equalValue compares JSON-decoded values; numbers compare numerically so
// 1 and 1.0 are the same value.
func equalValue(a, b any) bool {
	fa, aok := toFloat(a)
	fb, bok := toFloat(b)
	if aok && bok {
		return fa == fb || math.Abs(fa-fb) <= 1e-12*math.Max(math.Abs(fa), math.Abs(fb))
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func sign(f float64) int {
	if f < 0 {
		return -1
	}
	return 1
}

func maxOf(fs []float64) (float64, bool) {
	if len(fs) == 0 {
		return 0, false
	}
	m := fs[0]
	for _, f := range fs[1:] {
		m = math.Max(m, f)
	}
	return m, true
}

func minOf(fs []float64) (float64, bool) {
	if len(fs) == 0 {
		return 0, false
	}
	m := fs[0]
	for _, f := range fs[1:] {
		m = math.Min(m, f)
	}
	return m, true
}

// parameters decodes the "parameters" object of a policy document.
func parameters(policy json.RawMessage) (point, error) {
	var doc struct {
		Parameters map[string]any `json:"parameters"`
	}
	if len(policy) == 0 {
		return point{}, nil
	}
	if err := json.Unmarshal(policy, &doc); err != nil {
		return nil, fmt.Errorf("policy is not a JSON object: %w", err)
	}
	if doc.Parameters == nil {
		return point{}, nil
	}
	return doc.Parameters, nil
}

// withParameter returns policy with parameters[name] = v; every other key
// and tree is carried over byte for byte.
func withParameter(policy json.RawMessage, name string, v any) (json.RawMessage, error) {
	doc := map[string]json.RawMessage{}
	if len(policy) > 0 {
		if err := json.Unmarshal(policy, &doc); err != nil {
			return nil, fmt.Errorf("policy is not a JSON object: %w", err)
		}
	}
	params := map[string]json.RawMessage{}
	if raw, ok := doc["parameters"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &params); err != nil {
			return nil, fmt.Errorf("policy parameters are not a JSON object: %w", err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode parameter %s: %w", name, err)
	}
	params[name] = b
	if doc["parameters"], err = json.Marshal(params); err != nil {
		return nil, fmt.Errorf("encode parameters: %w", err)
	}
	return json.Marshal(doc)
}
