package policy

import (
	"regexp"
	"strings"
	"testing"
)

func TestFieldNamesAreUniqueSnakeCase(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	seen := map[string]Field{}
	for f := Field(0); f < NumFields; f++ {
		name := FieldName(f)
		if !snake.MatchString(name) {
			t.Errorf("field %d: name %q is not snake_case (missing from fieldNames?)", f, name)
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("fields %d and %d share the name %q", prev, f, name)
		}
		seen[name] = f
		back, ok := FieldByName(name)
		if !ok || back != f {
			t.Errorf("FieldByName(%q) = %d, %v; want %d", name, back, ok, f)
		}
	}
	if FieldName(-1) != "" || FieldName(NumFields) != "" {
		t.Error("FieldName out of range should be empty")
	}
}

func TestFieldNamesMatchConstants(t *testing.T) {
	cases := map[Field]string{
		FCostDelayThisTxOneTick: "cost_delay_this_tx_one_tick",
		FIsEODRush:              "is_eod_rush",
		FSystemTickInDay:        "system_tick_in_day",
		FQueue1TotalValue:       "queue1_total_value",
		FCostEODPenalty:         "cost_eod_penalty",
		FBalance:                "balance",
		FTicksToDeadline:        "ticks_to_deadline",
	}
	for f, want := range cases {
		if got := FieldName(f); got != want {
			t.Errorf("FieldName(%d) = %q, want %q", f, got, want)
		}
	}
	if !IsTxField(FAmount) || IsTxField(FBalance) || !IsTxField(FOverdueDuration) {
		t.Error("IsTxField misclassifies fields")
	}
}

func TestTreeAndActionNames(t *testing.T) {
	for tr := Tree(0); tr < NumTrees; tr++ {
		back, ok := TreeByName(tr.String())
		if !ok || back != tr {
			t.Errorf("TreeByName(%q) = %v, %v", tr.String(), back, ok)
		}
	}
	if PaymentTree.String() != "payment_tree" || EndOfTickCollateralTree.String() != "end_of_tick_collateral_tree" {
		t.Error("tree names differ from the JSON keys")
	}
	if _, ok := TreeByName("root"); ok {
		t.Error(`TreeByName("root") should fail`)
	}
	legal := 0
	for k := ActionKind(0); k < numActionKinds; k++ {
		back, ok := ActionKindByName(k.String())
		if !ok || back != k {
			t.Errorf("ActionKindByName(%q) = %v, %v", k.String(), back, ok)
		}
		for tr := Tree(0); tr < NumTrees; tr++ {
			if k.LegalIn(tr) {
				legal++
			}
		}
	}
	// Collateral actions are legal in both collateral trees.
	if want := int(numActionKinds) + 3; legal != want {
		t.Errorf("%d (action, tree) pairs legal, want %d", legal, want)
	}
	if ActionKind(99).String() != "UnknownAction" || Tree(9).String() != "unknown_tree" {
		t.Error("out-of-range names")
	}
}

func TestActionParams(t *testing.T) {
	cases := []struct {
		k             ActionKind
		req, optional string
	}{
		{Release, "", "priority_flag,timed_for_tick,reason"},
		{StaggerSplit, "num_splits,stagger_first_now,stagger_gap_ticks,priority_boost_children", "reason"},
		{SetReleaseBudget, "max_value_to_release", "max_per_counterparty,focus_counterparties,reason"},
		{SetState, "key,value", "reason"},
		{PostCollateral, "amount", "auto_withdraw_after_ticks,reason"},
		{HoldCollateral, "", "reason"},
	}
	for _, tc := range cases {
		req, opt := ActionParams(tc.k)
		if strings.Join(req, ",") != tc.req || strings.Join(opt, ",") != tc.optional {
			t.Errorf("%s: got %v / %v, want %s / %s", tc.k, req, opt, tc.req, tc.optional)
		}
	}
	if r, o := ActionParams(numActionKinds); r != nil || o != nil {
		t.Error("out of range kind should have no parameters")
	}
}
