package schema

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func sampleRecords() []Record {
	return []Record{
		&ExperimentStarted{ExpID: "exp1-20261125-120000-abcdef", Name: "exp1", Type: "generic",
			Config: json.RawMessage(`{"master_seed":42}`), MasterSeed: 42, Scenario: "s.yaml", Model: "builtin:search",
			StartedAt: t0, ProgramVersion: "dev", Host: "h", ConfigHash: "abc"},
		&Iteration{ExpID: "e", Iteration: 3, TotalCost: 12345, AgentCosts: map[string]int64{"A": 1, "B": 12344},
			Policies: json.RawMessage(`{"A":{}}`), AcceptedChanges: map[string]bool{"A": true}, Timestamp: t0},
		&PolicyEvaluation{ExpID: "e", Iteration: 2, Agent: "BANK_A", ProposedPolicy: json.RawMessage(`{"x":1}`),
			OldCost: 10, NewCost: 7, Delta: 3, Accepted: true, Reason: "improved", NumSamples: 10,
			SampleDetails: json.RawMessage(`[{"k":0}]`), Seed: 99, Timestamp: t0},
		&Event{ExpID: "e", Seq: 17, Iteration: 2, EventType: "llm_interaction", Data: json.RawMessage(`{"a":1}`), Timestamp: t0},
		&ExperimentCompleted{ExpID: "e", CompletedAt: t0, Status: StatusCompleted, Converged: true,
			ConvergenceReason: "stability", NumIterations: 9, FinalCost: 5, BestCost: 4,
			FinalPolicies: json.RawMessage(`{}`), AgentFinalCosts: map[string]int64{"A": 5}, DurationSeconds: 1.5},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		t.Run(string(r.Kind()), func(t *testing.T) {
			b, err := Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, r)
			}
		})
	}
}

func TestEnvelope(t *testing.T) {
	b, err := Encode(sampleRecords()[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"v": `1`, "kind": `"iteration"`, "experiment_id": `"e"`, "key": `"3"`}
	for k, v := range want {
		if string(m[k]) != v {
			t.Errorf("envelope %s = %s, want %s", k, m[k], v)
		}
	}
	if len(m["data"]) == 0 || m["data"][0] != '{' {
		t.Errorf("envelope data = %s, want an object", m["data"])
	}
}

func TestSubjectAndMsgID(t *testing.T) {
	rs := sampleRecords()
	tests := []struct {
		r              Record
		subject, msgID string
	}{
		{rs[0], "simcash.exp1-20261125-120000-abcdef.started", "exp1-20261125-120000-abcdef.started"},
		{rs[1], "simcash.e.iteration", "e.iteration.3"},
		{rs[2], "simcash.e.evaluation", "e.evaluation.2.BANK_A"},
		{rs[3], "simcash.e.event.llm_interaction", "e.event.17"},
		{rs[4], "simcash.e.completed", "e.completed"},
	}
	for _, tt := range tests {
		if got := Subject(tt.r); got != tt.subject {
			t.Errorf("Subject(%s) = %q, want %q", tt.r.Kind(), got, tt.subject)
		}
		if got := MsgID(tt.r); got != tt.msgID {
			t.Errorf("MsgID(%s) = %q, want %q", tt.r.Kind(), got, tt.msgID)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := map[string]bool{
		"exp1-20261125-120000-a1b2c3": true, "A_b-9": true,
		"": false, "a.b": false, "a b": false, "a*": false, "a>": false, "é": false,
	}
	for s, want := range tests {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not json", `{"v":1,`, ErrMalformed},
		{"not an object", `[1,2]`, ErrMalformed},
		{"no version", `{"kind":"iteration","experiment_id":"e","key":"1","data":{"iteration":1}}`, ErrUnknownVersion},
		{"future version", `{"v":2,"kind":"iteration","experiment_id":"e","key":"1","data":{"iteration":1}}`, ErrUnknownVersion},
		{"unknown kind", `{"v":1,"kind":"bogus","experiment_id":"e","key":"1","data":{}}`, ErrUnknownKind},
		{"no experiment id", `{"v":1,"kind":"iteration","key":"1","data":{"iteration":1}}`, ErrMissingExperimentID},
		{"no key", `{"v":1,"kind":"iteration","experiment_id":"e","data":{"iteration":1}}`, ErrMissingKey},
		{"iteration zero", `{"v":1,"kind":"iteration","experiment_id":"e","key":"0","data":{"iteration":0}}`, ErrMissingKey},
		{"evaluation without agent", `{"v":1,"kind":"evaluation","experiment_id":"e","key":"1.","data":{"iteration":1}}`, ErrMissingKey},
		{"key mismatch", `{"v":1,"kind":"iteration","experiment_id":"e","key":"2","data":{"iteration":1}}`, ErrMalformed},
		{"no data", `{"v":1,"kind":"started","experiment_id":"e","key":""}`, ErrMalformed},
		{"data of wrong type", `{"v":1,"kind":"iteration","experiment_id":"e","key":"1","data":{"iteration":"one"}}`, ErrMalformed},
		{"id mismatch", `{"v":1,"kind":"iteration","experiment_id":"e","key":"1","data":{"experiment_id":"f","iteration":1}}`, ErrMalformed},
		{"unsafe id", `{"v":1,"kind":"iteration","experiment_id":"a.b","key":"1","data":{"iteration":1}}`, ErrInvalid},
		{"unsafe event type", `{"v":1,"kind":"event","experiment_id":"e","key":"1","data":{"seq":1,"event_type":"a.b"}}`, ErrInvalid},
		{"bad status", `{"v":1,"kind":"completed","experiment_id":"e","key":"","data":{"status":"done"}}`, ErrInvalid},
	}
	sentinels := []error{ErrMalformed, ErrUnknownVersion, ErrUnknownKind, ErrMissingKey, ErrMissingExperimentID, ErrInvalid}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
		})
	}
}

func TestDecodeFillsIDFromEnvelope(t *testing.T) {
	r, err := Decode([]byte(`{"v":1,"kind":"event","experiment_id":"e","key":"4","data":{"seq":4,"event_type":"iteration_start"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ExperimentID() != "e" {
		t.Errorf("ExperimentID = %q, want e", r.ExperimentID())
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	bad := []Record{
		&Iteration{ExpID: "e", Iteration: 0},
		&Event{ExpID: "e", EventType: "a b"},
		&Iteration{ExpID: "bad id", Iteration: 1},
		&ExperimentCompleted{ExpID: "e", Status: ""},
		&Event{ExpID: "e", EventType: "x", Data: json.RawMessage(`{bad`)},
	}
	for _, r := range bad {
		if b, err := Encode(r); err == nil {
			t.Errorf("Encode(%#v) = %s, want error", r, b)
		}
	}
}

// An llm_interaction event with a prompt larger than a record may be is
// published with the prompt's head and a note; other records over the
// limit are refused.
func TestEncodeFitsLargeEvents(t *testing.T) {
	prompt := strings.Repeat("é", 3<<20) // 6 MiB of two-byte runes
	data, _ := json.Marshal(map[string]any{"agent": "BANK_A", "user_prompt": prompt, "raw_response": "ok", "prompt_tokens": 7})
	ev := &Event{ExpID: "e", Seq: 1, Iteration: 1, EventType: "llm_interaction", Data: data, Timestamp: t0}
	b, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxRecordBytes || len(b) < MaxRecordBytes/2 {
		t.Fatalf("encoded %d bytes, want just under %d", len(b), MaxRecordBytes)
	}
	r, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(r.(*Event).Data, &got); err != nil {
		t.Fatal(err)
	}
	p := got["user_prompt"].(string)
	if !strings.HasPrefix(p, "éé") || !strings.Contains(p, "cut by simcash") || !strings.Contains(p, "of 6291456 bytes kept") || !utf8.ValidString(p) {
		t.Errorf("cut prompt ends %q", p[len(p)-200:])
	}
	if got["raw_response"] != "ok" || got["prompt_tokens"] != float64(7) {
		t.Errorf("short fields changed: %v %v", got["raw_response"], got["prompt_tokens"])
	}
	if ev.Data == nil || len(ev.Data) != len(data) {
		t.Error("Encode changed the caller's record")
	}
	it := &Iteration{ExpID: "e", Iteration: 1, Policies: json.RawMessage(`{"A":"` + strings.Repeat("x", 2<<20) + `"}`), Timestamp: t0}
	if _, err := Encode(it); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Encode of a 2 MiB iteration: %v, want a size error", err)
	}
}
