package llmopt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

var (
	// thinkRE removes the visible reasoning some open models emit; it often
	// contains draft JSON that is not the answer.
	thinkRE = regexp.MustCompile(`(?s)<think>.*?</think>`)
	fenceRE = regexp.MustCompile("(?s)```[A-Za-z]*[ \t]*\r?\n?(.*?)```")
)

// extractPolicy finds the policy JSON object in a model's answer. Candidates
// are the valid objects in fenced blocks, then the balanced, valid top-level
// objects of the whole text, in order; the first that looks like a policy
// document wins (so a snippet such as {"initial_liquidity_fraction": 0.1} in
// the prose does not), else the first candidate. The result is compacted.
func extractPolicy(answer string) (json.RawMessage, error) {
	text := thinkRE.ReplaceAllString(answer, "")
	var candidates []json.RawMessage
	var firstErr error
	add := func(objs []json.RawMessage, err error) {
		candidates = append(candidates, objs...)
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, m := range fenceRE.FindAllStringSubmatch(text, -1) {
		add(objects(m[1]))
	}
	add(objects(text))
	for _, c := range candidates {
		if looksLikePolicy(c) {
			return c, nil
		}
	}
	// No policy-like object: a fragment is no answer when something was
	// broken (its inner nodes would parse), so report the problem instead.
	if firstErr != nil {
		return nil, firstErr
	}
	if len(candidates) > 0 {
		return candidates[0], nil
	}
	return nil, errNoObject
}

var errNoObject = errors.New("no JSON object found in the answer; reply with one policy JSON document")

// looksLikePolicy reports whether obj has a key only a policy document has.
func looksLikePolicy(obj json.RawMessage) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(obj, &keys) != nil {
		return false
	}
	for _, k := range []string{"payment_tree", "bank_tree", "policy_id", "strategic_collateral_tree", "end_of_tick_collateral_tree"} {
		if _, ok := keys[k]; ok {
			return true
		}
	}
	// A parameters-only document counts; an action node also has
	// "parameters" but always a "type".
	_, params := keys["parameters"]
	_, typed := keys["type"]
	return params && !typed
}

// objects returns the balanced {...} spans of s that are valid JSON, in
// order, compacted, with the first problem met. A balanced span that is not
// valid JSON (prose in braces) is skipped as a whole. An unclosed brace may
// be a stray one in the prose, so the scan goes on after it.
func objects(s string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	var firstErr error
	for i := 0; i < len(s); {
		start := strings.IndexByte(s[i:], '{')
		if start < 0 {
			break
		}
		start += i
		end := balancedEnd(s, start)
		if end < 0 {
			if firstErr == nil {
				firstErr = fmt.Errorf("the JSON object starting at character %d is never closed (answer cut off? raise max_tokens)", start)
			}
			i = start + 1
			continue
		}
		var buf bytes.Buffer
		var v any
		if err := json.Unmarshal([]byte(s[start:end]), &v); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("invalid JSON in the answer: %w", err)
			}
		} else if err := json.Compact(&buf, []byte(s[start:end])); err == nil {
			out = append(out, buf.Bytes())
		}
		i = end
	}
	return out, firstErr
}

// balancedEnd returns the index just past the brace closing the one at
// start, ignoring braces inside JSON strings, or -1 if it is never closed.
func balancedEnd(s string, start int) int {
	depth := 0
	inString, escaped := false, false
	for i := start; i < len(s); i++ {
		c := s[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
