package policy

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and, when they parse, evaluates
// every tree against hostile contexts: neither may panic.
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"payment_tree":{"type":"action","node_id":"A","action":"Release"}}`,
		string(wrap("payment_tree", cond("N", `{"op":"<","left":{"compute":{"op":"/","left":{"field":"balance"},"right":{"field":"amount"}}},"right":{"value":1}}`, okAction, act("H", "Hold", "")), "")),
		string(wrap("payment_tree", act("S", "StaggerSplit", `{"num_splits":{"field":"amount"},"stagger_first_now":{"field":"balance"},"stagger_gap_ticks":{"value":-1},"priority_boost_children":{"value":1e300}}`), "")),
		string(wrap("bank_tree", act("B", "SetState", `{"key":{"value":"bank_state_x"},"value":{"field":"bank_state_x"}}`), "")),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/mid.json"); err == nil {
		f.Add(b)
	}
	if files, _ := filepath.Glob(filepath.Join(refPolicies, "*.json")); len(files) > 0 {
		for _, name := range files[:min(len(files), 6)] {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	hostile := []float64{0, -1, 1, math.NaN(), math.Inf(1), math.Inf(-1), 1e308, -1e308, 5e-324}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a policy with an error")
			}
			return
		}
		for _, h := range hostile {
			var ctx Context
			for i := range ctx.V {
				ctx.V[i] = h
			}
			ctx.State = []float64{h}
			for tr := Tree(-1); tr <= NumTrees; tr++ {
				_, _ = p.Decide(tr, &ctx)
			}
		}
		if _, err := Parse(p.JSON()); err != nil {
			t.Fatalf("canonical JSON does not parse: %v\n%s", err, p.JSON())
		}
		if _, err := p.WithParams(map[string]float64{"initial_liquidity_fraction": 0.3}); err != nil {
			t.Fatalf("WithParams on a valid policy: %v", err)
		}
	})
}
