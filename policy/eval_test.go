package policy

import (
	"errors"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// decideCond parses a payment tree "c ? Release : Hold" and reports which
// branch ctx takes.
func decideCond(t *testing.T, c, params string, ctx *Context) (bool, error) {
	t.Helper()
	p := mustParse(t, wrap("payment_tree", cond("N1", c, act("T", "Release", ""), act("F", "Hold", "")), params))
	a, err := p.Decide(PaymentTree, ctx)
	if err != nil {
		return false, err
	}
	return a.Kind == Release, nil
}

func TestComparisons(t *testing.T) {
	cases := []struct {
		op   string
		l, r string
		want bool
	}{
		{"==", "1", "1", true},
		{"==", "1", "1.0000000001", true}, // within 1e-9
		{"==", "1", "1.00000001", false},
		{"!=", "1", "1.0000000001", false},
		{"!=", "1", "2", true},
		{"<", "1", "2", true},
		{"<", "2", "2", false},
		{"<", "1.9999999999", "2", true}, // strict < has no epsilon
		{"<=", "2", "2", true},
		{"<=", "2.0000000001", "2", true}, // <= holds within 1e-9
		{"<=", "3", "2", false},
		{">", "3", "2", true},
		{">", "2", "2", false},
		{">=", "2", "2", true},
		{">=", "1.9999999999", "2", true},
		{">=", "1", "2", false},
		{"==", "true", "1", true}, // booleans are 1 and 0
		{"==", "false", "0", true},
	}
	for _, tc := range cases {
		t.Run(tc.l+tc.op+tc.r, func(t *testing.T) {
			got, err := decideCond(t, `{"op":"`+tc.op+`","left":{"value":`+tc.l+`},"right":{"value":`+tc.r+`}}`, "", &Context{})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s %s %s = %v, want %v", tc.l, tc.op, tc.r, got, tc.want)
			}
		})
	}
}

func TestLogic(t *testing.T) {
	const yes = `{"op":"==","left":{"value":1},"right":{"value":1}}`
	const no = `{"op":"==","left":{"value":1},"right":{"value":2}}`
	// A division by zero that must never be evaluated because of short-circuiting.
	const boom = `{"op":">","left":{"compute":{"op":"/","left":{"value":1},"right":{"field":"balance"}}},"right":{"value":0}}`
	cases := []struct {
		name string
		c    string
		want bool
	}{
		{"and true", `{"op":"and","conditions":[` + yes + `,` + yes + `]}`, true},
		{"and false", `{"op":"and","conditions":[` + yes + `,` + no + `]}`, false},
		{"and short-circuits", `{"op":"and","conditions":[` + no + `,` + boom + `]}`, false},
		{"or true", `{"op":"or","conditions":[` + no + `,` + yes + `]}`, true},
		{"or false", `{"op":"or","conditions":[` + no + `,` + no + `]}`, false},
		{"or short-circuits", `{"op":"or","conditions":[` + yes + `,` + boom + `]}`, true},
		{"not", `{"op":"not","condition":` + no + `}`, true},
		{"not not", `{"op":"not","condition":{"op":"not","condition":` + no + `}}`, false},
		{"nested", `{"op":"and","conditions":[{"op":"or","conditions":[` + no + `,` + yes + `]},{"op":"not","condition":` + no + `}]}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decideCond(t, tc.c, "", &Context{})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCompute checks each arithmetic op by comparing its result with an
// expected literal through ==.
func TestCompute(t *testing.T) {
	var ctx Context
	ctx.V[FBalance] = 700
	ctx.V[FAmount] = 300
	ctx.State = []float64{4}
	cases := []struct {
		name, compute string
		want          float64
	}{
		{"add", `{"op":"+","left":{"field":"balance"},"right":{"field":"amount"}}`, 1000},
		{"sub", `{"op":"-","left":{"field":"balance"},"right":{"field":"amount"}}`, 400},
		{"mul", `{"op":"*","left":{"field":"amount"},"right":{"param":"k"}}`, 750},
		{"div", `{"op":"/","left":{"field":"balance"},"right":{"value":4}}`, 175},
		{"max", `{"op":"max","values":[{"value":1},{"field":"amount"},{"value":-5}]}`, 300},
		{"min", `{"op":"min","values":[{"value":1},{"field":"amount"},{"value":-5}]}`, -5},
		{"max of one", `{"op":"max","values":[{"value":7}]}`, 7},
		{"ceil", `{"op":"ceil","value":{"value":1.2}}`, 2},
		{"ceil negative", `{"op":"ceil","value":{"value":-1.2}}`, -1},
		{"floor", `{"op":"floor","value":{"value":1.8}}`, 1},
		{"floor negative", `{"op":"floor","value":{"value":-1.2}}`, -2},
		{"round half up", `{"op":"round","value":{"value":2.5}}`, 3},
		{"round half away from zero", `{"op":"round","value":{"value":-2.5}}`, -3},
		{"abs", `{"op":"abs","value":{"value":-3.5}}`, 3.5},
		{"clamp inside", `{"op":"clamp","value":{"value":5},"min":{"value":0},"max":{"value":10}}`, 5},
		{"clamp low", `{"op":"clamp","value":{"value":-5},"min":{"value":0},"max":{"value":10}}`, 0},
		{"clamp high", `{"op":"clamp","value":{"value":50},"min":{"value":0},"max":{"value":10}}`, 10},
		{"div0 divides", `{"op":"div0","numerator":{"value":9},"denominator":{"value":3},"default":{"value":-1}}`, 3},
		{"div0 default", `{"op":"div0","numerator":{"value":9},"denominator":{"value":0},"default":{"value":-1}}`, -1},
		{"div0 near zero", `{"op":"div0","numerator":{"value":9},"denominator":{"value":1e-10},"default":{"value":-1}}`, -1},
		{"state register", `{"op":"+","left":{"field":"bank_state_x"},"right":{"value":1}}`, 5},
		{"nested", `{"op":"*","left":{"compute":{"op":"+","left":{"value":1},"right":{"value":2}}},"right":{"compute":{"op":"-","left":{"value":10},"right":{"value":4}}}}`, 18},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := `{"op":"==","left":{"compute":` + tc.compute + `},"right":{"value":` + formatF(tc.want) + `}}`
			got, err := decideCond(t, c, `{"k":2.5}`, &ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !got {
				t.Errorf("compute %s != %v", tc.compute, tc.want)
			}
			// And the negative control: the value is not want+1.
			c = `{"op":"==","left":{"compute":` + tc.compute + `},"right":{"value":` + formatF(tc.want+1) + `}}`
			if got, _ := decideCond(t, c, `{"k":2.5}`, &ctx); got {
				t.Errorf("compute %s == %v too", tc.compute, tc.want+1)
			}
		})
	}
}

func formatF(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestRuntimeErrors(t *testing.T) {
	cases := []struct {
		name, c, want string
	}{
		{"division by zero", `{"op":">","left":{"compute":{"op":"/","left":{"value":1},"right":{"field":"balance"}}},"right":{"value":0}}`, `payment_tree node "N1": division by zero`},
		{"division by zero in max", `{"op":">","left":{"compute":{"op":"max","values":[{"value":1},{"compute":{"op":"/","left":{"value":1},"right":{"field":"amount"}}}]}},"right":{"value":0}}`, "division by zero"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decideCond(t, tc.c, "", &Context{})
			var de *DecideError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want DecideError containing %q", err, tc.want)
			}
		})
	}
	p := mustParse(t, wrap("payment_tree", okAction, ""))
	if _, err := p.Decide(PaymentTree, nil); err == nil {
		t.Error("nil context: want error")
	}
	var nilp *Policy
	if _, err := nilp.Decide(PaymentTree, &Context{}); err == nil {
		t.Error("nil policy: want error")
	}
	if _, err := p.Decide(Tree(42), &Context{}); err == nil {
		t.Error("bad tree: want error")
	}
}

func TestActions(t *testing.T) {
	var ctx Context
	ctx.V[FRemainingAmount] = 1000
	ctx.V[FEffectiveLiquidity] = 5000
	ctx.V[FQueue1LiquidityGap] = 1234.9
	ctx.V[FPriority] = 5
	cases := []struct {
		name   string
		tree   string
		node   string
		params string
		want   Action
	}{
		{"release", "payment_tree", act("A", "Release", ""), "", Action{Kind: Release, NodeID: "A"}},
		{"release with flag", "payment_tree", act("A", "Release", `{"priority_flag":{"value":"HIGH"}}`), "", Action{Kind: Release, NodeID: "A", Priority: 10, HasPriority: true}},
		{"release with low flag", "payment_tree", act("A", "ReleaseWithCredit", `{"priority_flag":{"value":"LOW"}}`), "", Action{Kind: ReleaseWithCredit, NodeID: "A", Priority: 1, HasPriority: true}},
		{"release with unknown flag", "payment_tree", act("A", "Release", `{"priority_flag":{"value":"URGENT"}}`), "", Action{Kind: Release, NodeID: "A", Priority: 5, HasPriority: true}},
		{"release timed", "payment_tree", act("A", "Release", `{"timed_for_tick":{"value":12.7}}`), "", Action{Kind: Release, NodeID: "A", TargetTick: 12, HasTargetTick: true}},
		{"split", "payment_tree", act("A", "Split", `{"num_splits":{"param":"n"}}`), `{"n":3}`, Action{Kind: Split, NodeID: "A", NumSplits: 3}},
		{"split truncates", "payment_tree", act("A", "Split", `{"num_splits":{"compute":{"op":"/","left":{"field":"remaining_amount"},"right":{"value":300}}}}`), "", Action{Kind: Split, NodeID: "A", NumSplits: 3}},
		{"pace and release", "payment_tree", act("A", "PaceAndRelease", `{"num_splits":{"value":4}}`), "", Action{Kind: PaceAndRelease, NodeID: "A", NumSplits: 4}},
		{"stagger split", "payment_tree", act("A", "StaggerSplit", `{"num_splits":{"value":5},"stagger_first_now":{"value":1},"stagger_gap_ticks":{"value":2},"priority_boost_children":{"value":3}}`), "",
			Action{Kind: StaggerSplit, NodeID: "A", NumSplits: 5, StaggerFirstNow: 1, StaggerGapTicks: 2, Priority: 3, HasPriority: true}},
		{"hold with reason", "payment_tree", act("A", "Hold", `{"reason":{"value":"InsufficientLiquidity"}}`), "", Action{Kind: Hold, NodeID: "A", Reason: "InsufficientLiquidity"}},
		{"drop", "payment_tree", act("A", "Drop", ""), "", Action{Kind: Drop, NodeID: "A"}},
		{"reprioritize", "payment_tree", act("A", "Reprioritize", `{"new_priority":{"compute":{"op":"+","left":{"field":"priority"},"right":{"value":3}}}}`), "", Action{Kind: Reprioritize, NodeID: "A", Priority: 8, HasPriority: true}},
		{"reprioritize clamps", "payment_tree", act("A", "Reprioritize", `{"new_priority":{"value":-4}}`), "", Action{Kind: Reprioritize, NodeID: "A", Priority: 0, HasPriority: true}},
		{"reprioritize clamps high", "payment_tree", act("A", "Reprioritize", `{"new_priority":{"value":1000}}`), "", Action{Kind: Reprioritize, NodeID: "A", Priority: 255, HasPriority: true}},
		{"withdraw from rtgs", "payment_tree", act("A", "WithdrawFromRtgs", ""), "", Action{Kind: WithdrawFromRtgs, NodeID: "A"}},
		{"resubmit highly urgent", "payment_tree", act("A", "ResubmitToRtgs", `{"rtgs_priority":{"value":"HighlyUrgent"}}`), "", Action{Kind: ResubmitToRtgs, NodeID: "A", Priority: RtgsHighlyUrgent, HasPriority: true}},
		{"resubmit normal", "payment_tree", act("A", "ResubmitToRtgs", `{"rtgs_priority":{"value":"Normal"}}`), "", Action{Kind: ResubmitToRtgs, NodeID: "A", Priority: RtgsNormal, HasPriority: true}},
		{"budget", "bank_tree", act("B", "SetReleaseBudget", `{"max_value_to_release":{"compute":{"op":"*","left":{"field":"effective_liquidity"},"right":{"value":0.33333}}}}`), "",
			Action{Kind: SetReleaseBudget, NodeID: "B", MaxValueToRelease: 1666}},
		{"budget with focus", "bank_tree", act("B", "SetReleaseBudget", `{"max_value_to_release":{"value":100},"max_per_counterparty":{"value":40.9},"focus_counterparties":{"value":["X","Y"]}}`), "",
			Action{Kind: SetReleaseBudget, NodeID: "B", MaxValueToRelease: 100, MaxPerCpty: 40, HasMaxPerCpty: true, FocusCpty: []string{"X", "Y"}}},
		{"budget, file spelling has no effect", "bank_tree", act("B", "SetReleaseBudget", `{"max_value_to_release":{"value":100},"max_per_cpty":{"value":40.9},"focus_cpty_list":{"value":["X","Y"]}}`), "",
			Action{Kind: SetReleaseBudget, NodeID: "B", MaxValueToRelease: 100}},
		{"budget, empty focus", "bank_tree", act("B", "SetReleaseBudget", `{"max_value_to_release":{"value":100},"max_per_counterparty":{"value":0},"focus_counterparties":{"value":[]}}`), "",
			Action{Kind: SetReleaseBudget, NodeID: "B", MaxValueToRelease: 100, HasMaxPerCpty: true}},
		{"set state", "bank_tree", act("B", "SetState", `{"key":{"value":"bank_state_mode"},"value":{"value":2},"reason":{"value":"go"}}`), "", Action{Kind: SetState, NodeID: "B", Reason: "go", StateValue: 2}},
		{"add state", "bank_tree", act("B", "AddState", `{"key":{"value":"bank_state_mode"},"value":{"value":-1}}`), "", Action{Kind: AddState, NodeID: "B", StateValue: -1}},
		{"no action", "bank_tree", act("B", "NoAction", ""), "", Action{Kind: NoAction, NodeID: "B"}},
		{"hold in bank tree is no action", "bank_tree", act("B", "Hold", ""), "", Action{Kind: NoAction, NodeID: "B"}},
		{"post collateral", "strategic_collateral_tree", act("S", "PostCollateral", `{"amount":{"field":"queue1_liquidity_gap"},"auto_withdraw_after_ticks":{"value":10},"reason":{"value":"PreemptivePosting"}}`), "",
			Action{Kind: PostCollateral, NodeID: "S", Amount: 1234, AutoWithdrawAfterTicks: 10, Reason: "PreemptivePosting"}},
		{"post zero is hold", "strategic_collateral_tree", act("S", "PostCollateral", `{"amount":{"value":0.9}}`), "", Action{Kind: HoldCollateral, NodeID: "S"}},
		{"post negative timer ignored", "end_of_tick_collateral_tree", act("S", "PostCollateral", `{"amount":{"value":5},"auto_withdraw_after_ticks":{"value":-3}}`), "", Action{Kind: PostCollateral, NodeID: "S", Amount: 5}},
		{"withdraw collateral", "end_of_tick_collateral_tree", act("E", "WithdrawCollateral", `{"amount":{"value":77}}`), "", Action{Kind: WithdrawCollateral, NodeID: "E", Amount: 77}},
		{"withdraw negative is hold", "end_of_tick_collateral_tree", act("E", "WithdrawCollateral", `{"amount":{"value":-77}}`), "", Action{Kind: HoldCollateral, NodeID: "E"}},
		{"hold collateral", "strategic_collateral_tree", act("S", "HoldCollateral", ""), "", Action{Kind: HoldCollateral, NodeID: "S"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, wrap(tc.tree, tc.node, tc.params))
			tr, _ := TreeByName(tc.tree)
			got, err := p.Decide(tr, &ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !equalAction(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func equalAction(a, b Action) bool {
	return reflect.DeepEqual(a, b) || (len(a.FocusCpty) == 0 && len(b.FocusCpty) == 0 && func() bool {
		a.FocusCpty, b.FocusCpty = nil, nil
		return reflect.DeepEqual(a, b)
	}())
}

func TestActionRuntimeErrors(t *testing.T) {
	cases := []struct {
		name, node, want string
	}{
		{"split below 2", act("A", "Split", `{"num_splits":{"value":1}}`), "num_splits must be >= 2"},
		{"split NaN", act("A", "Split", `{"num_splits":{"compute":{"op":"div0","numerator":{"value":0},"denominator":{"value":0},"default":{"compute":{"op":"-","left":{"field":"amount"},"right":{"field":"amount"}}}}}}`), "num_splits must be >= 2"},
		{"stagger first beyond splits", act("A", "StaggerSplit", `{"num_splits":{"value":2},"stagger_first_now":{"value":3},"stagger_gap_ticks":{"value":1},"priority_boost_children":{"value":0}}`), "stagger_first_now (3) cannot exceed num_splits (2)"},
		{"division by zero in parameter", act("A", "Split", `{"num_splits":{"compute":{"op":"/","left":{"value":4},"right":{"field":"amount"}}}}`), `node "A": division by zero`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, wrap("payment_tree", tc.node, ""))
			_, err := p.Decide(PaymentTree, &Context{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestStateSlots(t *testing.T) {
	p := mustParse(t, []byte(`{"parameters":{},
	  "payment_tree":`+cond("P", `{"op":">","left":{"field":"bank_state_zeta"},"right":{"value":0}}`, okAction, act("H", "Hold", ""))+`,
	  "bank_tree":`+cond("B", `{"op":">","left":{"field":"bank_state_alpha"},"right":{"value":0}}`,
		act("S1", "SetState", `{"key":{"value":"bank_state_zeta"},"value":{"value":1}}`),
		act("S2", "AddState", `{"key":{"value":"bank_state_mid"},"value":{"value":1}}`))+`}`))
	keys := p.StateKeys()
	if want := []string{"bank_state_alpha", "bank_state_mid", "bank_state_zeta"}; !slices.Equal(keys, want) {
		t.Fatalf("StateKeys = %v, want %v", keys, want)
	}
	slot := func(name string) int { return slices.Index(keys, name) }
	ctx := Context{State: make([]float64, len(keys))}
	a, err := p.Decide(BankTree, &ctx)
	if err != nil || a.Kind != AddState || a.StateSlot != slot("bank_state_mid") {
		t.Fatalf("alpha=0: got %+v, %v; want AddState on slot %d", a, err, slot("bank_state_mid"))
	}
	ctx.State[slot("bank_state_alpha")] = 1
	a, _ = p.Decide(BankTree, &ctx)
	if a.Kind != SetState || a.StateSlot != slot("bank_state_zeta") {
		t.Fatalf("alpha=1: got %+v; want SetState on slot %d", a, slot("bank_state_zeta"))
	}
	if a, _ := p.Decide(PaymentTree, &ctx); a.Kind != Hold {
		t.Errorf("zeta=0: got %v, want Hold", a.Kind)
	}
	ctx.State[slot("bank_state_zeta")] = 2
	if a, _ := p.Decide(PaymentTree, &ctx); a.Kind != Release {
		t.Errorf("zeta=2: got %v, want Release", a.Kind)
	}
	// A short State slice reads as zeros instead of failing.
	if a, err := p.Decide(PaymentTree, &Context{}); err != nil || a.Kind != Hold {
		t.Errorf("nil State: got %v, %v; want Hold", a.Kind, err)
	}
	// The slice returned is a copy.
	keys[0] = "changed"
	if p.StateKeys()[0] != "bank_state_alpha" {
		t.Error("StateKeys must return a copy")
	}
}

func TestTooManyStateKeys(t *testing.T) {
	var conds []string
	for i := range MaxStateKeys + 1 {
		conds = append(conds, `{"op":">","left":{"field":"bank_state_k`+string(rune('a'+i))+`"},"right":{"value":0}}`)
	}
	_, err := Parse(wrap("bank_tree", cond("B", `{"op":"and","conditions":[`+strings.Join(conds, ",")+`]}`, act("N", "NoAction", ""), act("M", "NoAction", "")), ""))
	if err == nil || !strings.Contains(err.Error(), "at most 10") {
		t.Errorf("want too-many-registers error, got %v", err)
	}
}

func TestBuiltins(t *testing.T) {
	tick := func(ctx *Context, now, deadline float64) {
		ctx.V[FCurrentTick] = now
		ctx.V[FDeadlineTick] = deadline
		ctx.V[FTicksToDeadline] = deadline - now
	}
	type step struct {
		now, deadline, balance, eff, amount float64
		want                                ActionKind
	}
	cases := []struct {
		name  string
		set   map[string]float64
		steps []step
	}{
		{"Fifo", nil, []step{{0, 10, 0, 0, 100, Release}, {50, 10, -5, -5, 1e9, Release}}},
		{"Deadline", nil, []step{
			{10, 10, 0, 0, 1, Drop},   // at the deadline
			{11, 10, 0, 0, 1, Drop},   // past it
			{5, 10, 0, 0, 1, Release}, // 5 ticks left = urgency 5
			{4, 10, 0, 0, 1, Hold},    // 6 ticks left
		}},
		{"Deadline", map[string]float64{"urgency_threshold": 10}, []step{{4, 10, 0, 0, 1, Release}, {0, 11, 0, 0, 1, Hold}}},
		{"LiquidityAware", nil, []step{
			{10, 10, 1e6, 1e6, 1, Drop},
			{5, 10, 100, 100, 100, Release},          // urgent and payable
			{5, 10, 100, 99, 100, Hold},              // urgent, not payable
			{0, 10, 150000, 150000, 100000, Release}, // keeps 50000 buffer exactly
			{0, 10, 149999, 149999, 100000, Hold},    // would break the buffer
		}},
		{"LiquidityAware", map[string]float64{"target_buffer": 0}, []step{
			{0, 10, 100, 100, 100, Release}, // zero buffer: payable
			{0, 10, 100, 99, 100, Hold},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Builtin(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if tc.set != nil {
				if p, err = p.WithParams(tc.set); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tc.steps {
				var ctx Context
				tick(&ctx, s.now, s.deadline)
				ctx.V[FBalance], ctx.V[FEffectiveLiquidity] = s.balance, s.eff
				ctx.V[FAmount], ctx.V[FRemainingAmount] = s.amount, s.amount
				a, err := p.Decide(PaymentTree, &ctx)
				if err != nil {
					t.Fatal(err)
				}
				if a.Kind != s.want {
					t.Errorf("step %d %+v: got %v, want %v", i, s, a.Kind, s.want)
				}
			}
		})
	}
	if _, err := Builtin("Nope"); err == nil {
		t.Error("unknown builtin: want error")
	}
	if got := BuiltinNames(); !slices.Equal(got, []string{"Deadline", "Fifo", "LiquidityAware", "LiquiditySplitting", "MockSplitting"}) {
		t.Errorf("BuiltinNames = %v", got)
	}
}

// TestBuiltinsMatchReference runs our built-ins and the reference files on
// the same grid of contexts and expects the same decisions.
func TestBuiltinsMatchReference(t *testing.T) {
	refFiles(t)
	for name, file := range map[string]string{"Fifo": "fifo.json", "Deadline": "deadline.json", "LiquidityAware": "liquidity_aware.json"} {
		ours, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ParseFile(refPolicies + "/" + file)
		if err != nil {
			t.Fatal(err)
		}
		refParams := ref.Params()
		delete(refParams, "initial_liquidity_fraction") // deliberately absent from ours
		if !maps.Equal(ours.Params(), refParams) {
			t.Errorf("%s: parameters %v, reference %v", name, ours.Params(), ref.Params())
		}
		n := 0
		for now := 0.0; now < 14; now++ {
			for _, bal := range []float64{-1000, 0, 49999, 50000, 100000, 150000, 250000} {
				for _, eff := range []float64{0, 50000, 100000, 1e6} {
					for _, amt := range []float64{1, 50000, 100000} {
						var ctx Context
						ctx.V[FCurrentTick], ctx.V[FDeadlineTick], ctx.V[FTicksToDeadline] = now, 10, 10-now
						ctx.V[FBalance], ctx.V[FEffectiveLiquidity] = bal, eff
						ctx.V[FAmount], ctx.V[FRemainingAmount] = amt, amt
						a, err1 := ours.Decide(PaymentTree, &ctx)
						b, err2 := ref.Decide(PaymentTree, &ctx)
						if err1 != nil || err2 != nil || a.Kind != b.Kind {
							t.Fatalf("%s at %+v: ours %v/%v, reference %v/%v", name, ctx.V[:8], a.Kind, err1, b.Kind, err2)
						}
						n++
					}
				}
			}
		}
		if n == 0 {
			t.Fatal("no cases compared")
		}
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	p, err := ParseFile("testdata/mid.json")
	if err != nil {
		t.Fatal(err)
	}
	var ctx Context
	ctx.V[FRemainingAmount] = 500000
	ctx.V[FIsDivisible] = 1
	ctx.V[FTicksToDeadline] = 10
	ctx.State = make([]float64, len(p.StateKeys()))
	allocs := testing.AllocsPerRun(100, func() {
		for tr := Tree(0); tr < NumTrees; tr++ {
			if _, err := p.Decide(tr, &ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Decide allocates %v times per run, want 0", allocs)
	}
	a, _ := p.Decide(PaymentTree, &ctx)
	if a.Kind != Split || a.NumSplits != 3 {
		t.Errorf("mid.json: got %v/%d, want Split into 3", a.Kind, a.NumSplits)
	}
}

func TestDerive(t *testing.T) {
	var c Context
	c.V[FAmount], c.V[FRemainingAmount] = 1000, 400
	c.V[FBalance], c.V[FCreditLimit], c.V[FCreditUsed] = -3000, 1000, 3000
	c.V[FPostedCollateral], c.V[FCollateralHaircut] = 5001, 0.1
	c.Derive()
	want := map[Field]float64{
		FSettledAmount:              600,
		FIsUsingCredit:              1,
		FIsOverdraftCapped:          1,
		FUnsecuredCap:               1000,
		FAllowedOverdraftLimit:      5500, // floor(5001*0.9)=4500 + 1000
		FOverdraftHeadroom:          2500,
		FOverdraftUtilization:       3000.0 / 5500,
		FRequiredCollateralForUsage: 2000 / 0.9,
	}
	for f, w := range want {
		if math.Abs(c.V[f]-w) > 1e-9 {
			t.Errorf("%s = %v, want %v", FieldName(f), c.V[f], w)
		}
	}
	c.V[FBalance], c.V[FCreditUsed] = 10, 0
	c.Derive()
	if c.V[FIsUsingCredit] != 0 || c.V[FRequiredCollateralForUsage] != 0 || c.V[FOverdraftUtilization] != 0 {
		t.Errorf("positive balance: %v %v %v", c.V[FIsUsingCredit], c.V[FRequiredCollateralForUsage], c.V[FOverdraftUtilization])
	}
}

// TestConcurrentDecide shares one Policy between goroutines, each with its
// own Context, as the simulator and the experiment's parallel samples do.
func TestConcurrentDecide(t *testing.T) {
	p, err := ParseFile("testdata/mid.json")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan [2]int)
	for g := range 4 {
		go func() {
			var ctx Context
			ctx.State = make([]float64, len(p.StateKeys()))
			splits, holds := 0, 0
			for i := range 1000 {
				ctx.V[FRemainingAmount] = float64((i + g) * 1000)
				ctx.V[FIsDivisible] = float64(i % 2)
				ctx.V[FTicksToDeadline] = 10
				a, err := p.Decide(PaymentTree, &ctx)
				if err != nil {
					t.Error(err)
					break
				}
				switch a.Kind {
				case Split:
					splits++
				case Hold:
					holds++
				}
			}
			done <- [2]int{splits, holds}
		}()
	}
	for range 4 {
		r := <-done
		if r[0] == 0 || r[1] == 0 {
			t.Errorf("expected both splits and holds, got %v", r)
		}
	}
}
