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

// extractPolicy finds the policy JSON object in a model's answer: the first
// fenced block holding a valid object, else the first balanced, valid object
// in the text. The result is compacted.
func extractPolicy(answer string) (json.RawMessage, error) {
	text := thinkRE.ReplaceAllString(answer, "")
	var firstErr error
	for _, m := range fenceRE.FindAllStringSubmatch(text, -1) {
		obj, err := firstObject(m[1])
		if err == nil {
			return obj, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	obj, err := firstObject(text)
	if err == nil {
		return obj, nil
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, err
}

var errNoObject = errors.New("no JSON object found in the answer; reply with one policy JSON document")

// firstObject returns the first balanced {...} span of s that is valid JSON.
// A balanced span that is not valid JSON (prose in braces) is skipped as a
// whole, so an inner node is never mistaken for the policy.
func firstObject(s string) (json.RawMessage, error) {
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
			break
		}
		candidate := s[start:end]
		var v any
		err := json.Unmarshal([]byte(candidate), &v)
		if err == nil {
			var buf bytes.Buffer
			if err := json.Compact(&buf, []byte(candidate)); err == nil {
				return buf.Bytes(), nil
			}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("invalid JSON in the answer: %w", err)
		}
		i = end
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, errNoObject
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
