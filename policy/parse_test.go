package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const refPolicies = "../../shared/simcash/policies"

// refFiles returns the reference policy files, skipping the test when the
// shared folder is absent.
func refFiles(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(refPolicies, "*.json"))
	if len(files) == 0 {
		t.Skipf("reference policies not found at %s (shared folder absent)", refPolicies)
	}
	return files
}

// wrap builds a document with one tree and the given parameters.
func wrap(tree, node, params string) []byte {
	if params == "" {
		params = "{}"
	}
	return []byte(`{"version":"1.0","policy_id":"t","parameters":` + params + `,"` + tree + `":` + node + `}`)
}

func mustParse(t testing.TB, data []byte) *Policy {
	t.Helper()
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	return p
}

func TestReferencePoliciesParse(t *testing.T) {
	for _, f := range refFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if p.ID() == "" {
				t.Error("empty policy_id")
			}
			if !p.Has(PaymentTree) {
				t.Error("reference policy without payment_tree")
			}
			// Canonical JSON is a fixed point of Parse.
			again, err := Parse(p.JSON())
			if err != nil {
				t.Fatalf("canonical JSON does not parse: %v", err)
			}
			if !bytes.Equal(again.JSON(), p.JSON()) {
				t.Errorf("JSON() not canonical:\n%s\n%s", p.JSON(), again.JSON())
			}
			// Every tree evaluates on an all-zero context without a panic.
			var ctx Context
			ctx.State = make([]float64, len(p.StateKeys()))
			for tr := Tree(0); tr < NumTrees; tr++ {
				if p.Has(tr) {
					if _, err := p.Decide(tr, &ctx); err != nil {
						var de *DecideError
						if !errors.As(err, &de) {
							t.Errorf("%s: unexpected error %v", tr, err)
						}
					}
				}
			}
		})
	}
}

func TestReferenceStateKeys(t *testing.T) {
	refFiles(t)
	p, err := ParseFile(filepath.Join(refPolicies, "memory_driven_strategist.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bank_state_cooldown", "bank_state_mode", "bank_state_release_count"}
	if got := p.StateKeys(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("StateKeys = %v, want %v", got, want)
	}
}

func TestParseFileErrors(t *testing.T) {
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: want error")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"payment_tree": {"type":"action","node_id":"A","action":"Relase"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(bad)
	if err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), `unknown action "Relase"`) {
		t.Errorf("error should name the file and the problem: %v", err)
	}
}

func TestParseRejectsBrokenJSON(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"parameters": 3}`, `{} {}`, `{"payment_tree": "Release"}`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q): want error", in)
		}
	}
}

const okAction = `{"type":"action","node_id":"A","action":"Release"}`

func cond(id, c, t, f string) string {
	return `{"type":"condition","node_id":"` + id + `","condition":` + c + `,"on_true":` + t + `,"on_false":` + f + `}`
}

func act(id, action, params string) string {
	if params == "" {
		params = "{}"
	}
	return `{"type":"action","node_id":"` + id + `","action":"` + action + `","parameters":` + params + `}`
}

func TestValidationErrors(t *testing.T) {
	cmp := func(l, r string) string { return `{"op":">","left":` + l + `,"right":` + r + `}` }
	cases := []struct {
		name string
		doc  []byte
		want []string // each must appear in the error
	}{
		{"unknown field", wrap("payment_tree", cond("N3", cmp(`{"field":"balanse"}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`payment_tree node "N3": unknown field "balanse"`}},
		{"tx field outside payment tree", wrap("bank_tree", cond("B1", cmp(`{"field":"amount"}`, `{"value":1}`), act("B2", "NoAction", ""), act("B3", "NoAction", "")), ""),
			[]string{`bank_tree node "B1": field "amount" describes a transaction`}},
		{"unknown parameter", wrap("payment_tree", cond("N1", cmp(`{"param":"thresh"}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": unknown parameter "thresh"`}},
		{"duplicate ids", wrap("payment_tree", cond("N1", cmp(`{"value":2}`, `{"value":1}`), act("A", "Release", ""), act("A", "Hold", "")), ""),
			[]string{`node "A": duplicate node_id`}},
		{"literal zero divisor", wrap("payment_tree", cond("N1", cmp(`{"compute":{"op":"/","left":{"field":"balance"},"right":{"value":0}}}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": division by a literal zero`}},
		{"action in wrong tree", wrap("end_of_tick_collateral_tree", act("B1", "Release", ""), ""),
			[]string{`end_of_tick_collateral_tree node "B1": action "Release" is not allowed in end_of_tick_collateral_tree`}},
		{"collateral action in payment tree", wrap("payment_tree", act("P1", "PostCollateral", `{"amount":{"value":1}}`), ""),
			[]string{`payment_tree node "P1": action "PostCollateral" is not allowed`}},
		{"unknown action", wrap("payment_tree", act("P1", "Relase", ""), ""),
			[]string{`node "P1": unknown action "Relase"`}},
		{"missing split count", wrap("payment_tree", act("P1", "Split", ""), ""),
			[]string{`node "P1": action Split needs parameter "num_splits"`}},
		{"missing stagger params", wrap("payment_tree", act("P1", "StaggerSplit", `{"num_splits":{"value":3}}`), ""),
			[]string{`"stagger_first_now"`, `"stagger_gap_ticks"`, `"priority_boost_children"`}},
		{"missing budget", wrap("bank_tree", act("B1", "SetReleaseBudget", ""), ""),
			[]string{`node "B1": action SetReleaseBudget needs parameter "max_value_to_release"`}},
		{"missing amount", wrap("strategic_collateral_tree", act("S1", "PostCollateral", ""), ""),
			[]string{`node "S1": action PostCollateral needs parameter "amount"`}},
		{"bad state key", wrap("bank_tree", act("B1", "SetState", `{"key":{"value":"mode"},"value":{"value":1}}`), ""),
			[]string{`node "B1": parameter "key" must be`}},
		{"bad rtgs priority", wrap("payment_tree", act("P1", "ResubmitToRtgs", `{"rtgs_priority":{"value":"Fast"}}`), ""),
			[]string{`node "P1": parameter "rtgs_priority" must be`}},
		{"ignored spelling still type-checked", wrap("bank_tree", act("B1", "SetReleaseBudget", `{"max_value_to_release":{"value":1},"focus_cpty_list":{"value":3}}`), ""),
			[]string{`node "B1": parameter "focus_cpty_list" must be {"value": [list of agent ids]}`}},
		{"unknown action parameter", wrap("payment_tree", act("P1", "Split", `{"num_split":{"value":2},"num_splits":{"value":2}}`), ""),
			[]string{`node "P1": unknown parameter "num_split" for action Split`}},
		{"string literal in comparison", wrap("payment_tree", cond("N1", cmp(`{"field":"balance"}`, `{"value":"lots"}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": right of ">": literal "lots" is not a number`}},
		{"two value kinds", wrap("payment_tree", cond("N1", cmp(`{"field":"balance","value":1}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": left of ">" must have exactly one of`}},
		{"unknown condition op", wrap("payment_tree", cond("N1", `{"op":"=>","left":{"value":1},"right":{"value":1}}`, okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": unknown condition op "=>"`}},
		{"unknown compute op", wrap("payment_tree", cond("N1", cmp(`{"compute":{"op":"pow","left":{"value":1},"right":{"value":1}}}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": unknown compute op "pow"`}},
		{"empty and", wrap("payment_tree", cond("N1", `{"op":"and","conditions":[]}`, okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": "and" needs a non-empty "conditions" list`}},
		{"empty max", wrap("payment_tree", cond("N1", cmp(`{"compute":{"op":"max","values":[]}}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": compute "max" needs a non-empty "values" list`}},
		{"missing branch", wrap("payment_tree", `{"type":"condition","node_id":"N1","condition":`+cmp(`{"value":1}`, `{"value":1}`)+`,"on_true":`+okAction+`}`, ""),
			[]string{`payment_tree: on_false of "N1" is missing`}},
		{"missing node id", wrap("payment_tree", `{"type":"action","action":"Release"}`, ""),
			[]string{`payment_tree: root has no node_id`}},
		{"bad node type", wrap("payment_tree", `{"type":"leaf","node_id":"X","action":"Release"}`, ""),
			[]string{`node "X": unknown node type "leaf"`}},
		{"non-numeric parameter", wrap("payment_tree", okAction, `{"x":"high"}`),
			[]string{`parameter "x": value "high" is not a number`}},
		{"missing clamp bound", wrap("payment_tree", cond("N1", cmp(`{"compute":{"op":"clamp","value":{"value":1},"min":{"value":0}}}`, `{"value":1}`), okAction, act("B", "Hold", "")), ""),
			[]string{`node "N1": "max" of compute "clamp" is missing`}},
		{"no tree", []byte(`{"version":"1.0","policy_id":"t","parameters":{"initial_liquidity_fraction":0.5}}`),
			[]string{"defines no tree"}},
		{"several problems at once", wrap("payment_tree", cond("N1", cmp(`{"field":"nope"}`, `{"param":"nada"}`), act("A1", "Jump", ""), act("A2", "Split", "")), ""),
			[]string{`unknown field "nope"`, `unknown parameter "nada"`, `unknown action "Jump"`, `needs parameter "num_splits"`, "4 problems"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.doc)
			if err == nil {
				t.Fatalf("want error, got none for %s", tc.doc)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %T: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	build := func(depth int) []byte {
		node := okAction
		for i := depth; i > 0; i-- {
			node = cond("N"+strings.Repeat("x", i), `{"op":">","left":{"field":"balance"},"right":{"value":0}}`, node, act("H"+strings.Repeat("x", i), "Hold", ""))
		}
		return wrap("payment_tree", node, "")
	}
	if _, err := Parse(build(MaxDepth)); err != nil {
		t.Errorf("depth %d should be accepted: %v", MaxDepth, err)
	}
	_, err := Parse(build(MaxDepth + 1))
	if err == nil || !strings.Contains(err.Error(), "deeper than 100") {
		t.Errorf("depth %d should be rejected, got %v", MaxDepth+1, err)
	}
}

func TestParseWithConstraints(t *testing.T) {
	lo, hi := 0.0, 1.0
	opt := Options{
		Params:  []ParamSpec{{Name: "initial_liquidity_fraction", Type: ParamFloat, Min: &lo, Max: &hi}, {Name: "n", Type: ParamInt}, {Name: "mode", Type: ParamEnum, AllowedValues: []float64{1, 2}}},
		Fields:  []string{"balance", "ticks_to_deadline", "system_tick_in_day"},
		Actions: map[Tree][]ActionKind{PaymentTree: {Release, Hold}, BankTree: {NoAction}},
	}
	good := `{"version":"1.0","policy_id":"g","parameters":{"initial_liquidity_fraction":0.25,"n":3,"mode":2},
	  "payment_tree":` + cond("N1", `{"op":"<=","left":{"field":"ticks_to_deadline"},"right":{"value":2}}`, act("A1", "Release", ""), act("A2", "Hold", "")) + `,
	  "bank_tree":` + act("B1", "NoAction", "") + `}`
	if _, err := ParseWith([]byte(good), opt); err != nil {
		t.Fatalf("good policy rejected: %v", err)
	}
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"out of bounds", `{"parameters":{"initial_liquidity_fraction":1.5},"payment_tree":` + okAction + `}`,
			[]string{`parameter "initial_liquidity_fraction" = 1.5: above the maximum 1`}},
		{"below bounds", `{"parameters":{"initial_liquidity_fraction":-0.1},"payment_tree":` + okAction + `}`,
			[]string{`below the minimum 0`}},
		{"not an int", `{"parameters":{"n":2.5},"payment_tree":` + okAction + `}`,
			[]string{`parameter "n" = 2.5: must be an integer`}},
		{"not in enum", `{"parameters":{"mode":3},"payment_tree":` + okAction + `}`,
			[]string{`parameter "mode" = 3: must be one of [1 2]`}},
		{"unlisted parameter", `{"parameters":{"urgency":3},"payment_tree":` + okAction + `}`,
			[]string{`parameter "urgency" is not allowed (allowed: initial_liquidity_fraction, mode, n)`}},
		{"field not allowed", `{"payment_tree":` + cond("N1", `{"op":">","left":{"field":"amount"},"right":{"value":2}}`, okAction, act("H", "Hold", "")) + `}`,
			[]string{`payment_tree node "N1": field "amount" is not allowed here`}},
		{"action not allowed", `{"payment_tree":` + act("S", "Split", `{"num_splits":{"value":2}}`) + `}`,
			[]string{`payment_tree node "S": action "Split" is not allowed in payment_tree (allowed: Release, Hold)`}},
		{"tree not allowed", `{"payment_tree":` + okAction + `,"strategic_collateral_tree":` + act("C", "HoldCollateral", "") + `}`,
			[]string{`strategic_collateral_tree: this tree is not allowed`}},
		{"all at once", `{"parameters":{"initial_liquidity_fraction":7,"x":1},"payment_tree":` + cond("N1", `{"op":">","left":{"field":"amount"},"right":{"value":2}}`, act("D", "Drop", ""), act("H", "Hold", "")) + `}`,
			[]string{"4 problems", `"initial_liquidity_fraction" = 7`, `"x" is not allowed`, `field "amount"`, `action "Drop"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWith([]byte(tc.doc), opt)
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParamsAndWithParams(t *testing.T) {
	p := mustParse(t, wrap("payment_tree", cond("N1", `{"op":"<=","left":{"field":"ticks_to_deadline"},"right":{"param":"urgency"}}`, okAction, act("H", "Hold", "")), `{"urgency":3,"initial_liquidity_fraction":0.5}`))
	if v, ok := p.Param("urgency"); !ok || v != 3 {
		t.Fatalf("Param(urgency) = %v, %v", v, ok)
	}
	if _, ok := p.Param("nope"); ok {
		t.Error("Param(nope) should be absent")
	}
	var ctx Context
	ctx.V[FTicksToDeadline] = 5
	if a, _ := p.Decide(PaymentTree, &ctx); a.Kind != Hold {
		t.Fatalf("urgency 3, 5 ticks left: got %v, want Hold", a.Kind)
	}
	q, err := p.WithParams(map[string]float64{"urgency": 6, "initial_liquidity_fraction": 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := q.Decide(PaymentTree, &ctx); a.Kind != Release {
		t.Errorf("urgency 6, 5 ticks left: got %v, want Release", a.Kind)
	}
	if v, _ := q.Param("initial_liquidity_fraction"); v != 0.2 {
		t.Errorf("override not applied: %v", v)
	}
	// The original is untouched.
	if v, _ := p.Param("urgency"); v != 3 {
		t.Errorf("WithParams modified the original: %v", v)
	}
	if a, _ := p.Decide(PaymentTree, &ctx); a.Kind != Hold {
		t.Error("WithParams changed the original's decisions")
	}
	if !strings.Contains(string(q.JSON()), `"urgency":6`) {
		t.Errorf("JSON lacks the new parameter: %s", q.JSON())
	}
	m := q.Params()
	m["urgency"] = 100
	if v, _ := q.Param("urgency"); v != 6 {
		t.Error("Params() must return a copy")
	}
	// New parameters may be added.
	r, err := p.WithParams(map[string]float64{"extra": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Param("extra"); !ok {
		t.Error("WithParams should add new parameters")
	}
}

func TestWithParamsKeepsConstraints(t *testing.T) {
	lo, hi := 0.0, 1.0
	opt := Options{Params: []ParamSpec{{Name: "initial_liquidity_fraction", Min: &lo, Max: &hi}}}
	p, err := ParseWith(wrap("payment_tree", okAction, `{"initial_liquidity_fraction":0.5}`), opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WithParams(map[string]float64{"initial_liquidity_fraction": 2}); err == nil {
		t.Error("WithParams should re-check the bounds the policy was parsed with")
	}
}

func TestCanonicalJSON(t *testing.T) {
	a := mustParse(t, []byte(`{ "policy_id":"x", "parameters":{"b":1.0,"a":2}, "comment":"dropped",
	   "payment_tree":{"node_id":"A","type":"action","action":"Release"} }`))
	want := `{"version":"1.0","policy_id":"x","parameters":{"a":2,"b":1},"payment_tree":{"type":"action","node_id":"A","action":"Release"}}`
	if got := string(a.JSON()); got != want {
		t.Errorf("JSON() =\n%s\nwant\n%s", got, want)
	}
}

func TestHas(t *testing.T) {
	p := mustParse(t, wrap("bank_tree", act("B", "NoAction", ""), ""))
	if p.Has(PaymentTree) || !p.Has(BankTree) || p.Has(-1) || p.Has(NumTrees) {
		t.Error("Has reports wrong trees")
	}
	var nilp *Policy
	if nilp.Has(PaymentTree) {
		t.Error("nil policy has no trees")
	}
	if _, err := p.Decide(PaymentTree, &Context{}); !errors.Is(err, ErrNoTree) {
		t.Errorf("Decide on a missing tree: %v, want ErrNoTree", err)
	}
}

// What SimCash accepts and ignores is accepted with a warning and does
// what SimCash does.
func TestWarnings(t *testing.T) {
	cases := []struct {
		name, doc string
		warning   string
		tree      Tree
		kind      ActionKind
		priority  bool
	}{
		{"collateral action in bank tree", string(wrap("bank_tree", act("B1", "PostCollateral", `{"amount":{"value":5}}`), "")),
			`bank_tree node "B1": action "PostCollateral" in bank_tree does nothing`, BankTree, NoAction, false},
		{"priority_flag from a parameter", string(wrap("payment_tree", act("P1", "Release", `{"priority_flag":{"param":"p"}}`), `{"p":1}`)),
			`payment_tree node "P1": parameter "priority_flag" is ignored`, PaymentTree, Release, false},
		{"Hold in bank tree is silent", string(wrap("bank_tree", act("B1", "Hold", ""), "")), "", BankTree, NoAction, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			var ws []string
			for _, w := range p.Warnings() {
				ws = append(ws, w.String())
			}
			if (tc.warning == "") != (len(ws) == 0) || tc.warning != "" && !strings.Contains(strings.Join(ws, "\n"), tc.warning) {
				t.Errorf("warnings %q, want %q", ws, tc.warning)
			}
			var ctx Context
			a, err := p.Decide(tc.tree, &ctx)
			if err != nil || a.Kind != tc.kind || a.HasPriority != tc.priority {
				t.Errorf("decision %+v, %v; want %v, priority %v", a, err, tc.kind, tc.priority)
			}
		})
	}
}
