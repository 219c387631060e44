package policy

import (
	"path/filepath"
	"testing"
)

// benchPolicy is a mid-size reference policy when the shared folder is
// present, else our own testdata/mid.json.
func benchPolicy(b *testing.B) *Policy {
	b.Helper()
	path := filepath.Join(refPolicies, "balanced_cost_optimizer.json")
	p, err := ParseFile(path)
	if err != nil {
		b.Logf("reference policy unavailable (%v); using testdata/mid.json", err)
		if p, err = ParseFile("testdata/mid.json"); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkDecide measures one payment-tree decision over a spread of
// contexts, reporting ns/decision and nodes visited per decision.
func BenchmarkDecide(b *testing.B) {
	p := benchPolicy(b)
	ctxs := make([]Context, 64)
	for i := range ctxs {
		c := &ctxs[i]
		c.State = make([]float64, len(p.StateKeys()))
		c.V[FAmount] = float64(10000 * (i + 1))
		c.V[FRemainingAmount] = c.V[FAmount]
		c.V[FBalance] = float64(50000 * (i%8 - 2))
		c.V[FEffectiveLiquidity] = c.V[FBalance] + 100000
		c.V[FAvailableLiquidity] = c.V[FEffectiveLiquidity]
		c.V[FCreditLimit] = 100000
		c.V[FTicksToDeadline] = float64(i%20 - 3)
		c.V[FIsPastDeadline] = b2f(i%20 < 3)
		c.V[FIsOverdue] = b2f(i%20 < 3)
		c.V[FPriority] = float64(i % 11)
		c.V[FSystemTicksPerDay] = 100
		c.V[FSystemTickInDay] = float64(i * 3 % 100)
		c.V[FDayProgressFraction] = c.V[FSystemTickInDay] / 100
		c.V[FIsEODRush] = b2f(c.V[FDayProgressFraction] >= 0.8)
		c.V[FQueue1TotalValue] = float64(30000 * i)
		c.V[FCostDelayThisTxOneTick] = c.V[FAmount] * 0.0001
		c.V[FCostOverdraftThisAmountOneTick] = c.V[FAmount] * 0.001 / 10000
		c.V[FCostDeadlinePenalty] = 50000
		c.V[FCostEODPenalty] = 10000
	}
	visited := 0
	for i := range ctxs {
		visited += pathLen(p.trees[PaymentTree], &ctxs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := p.Decide(PaymentTree, &ctxs[i&63]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mdecisions/s")
	nodes := float64(visited) / float64(len(ctxs))
	b.ReportMetric(nodes, "nodes/decision")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nodes, "ns/node")
}

// pathLen counts the nodes a decision visits, leaf included.
func pathLen(pr *program, ctx *Context) int {
	n, i := 0, int32(0)
	for {
		n++
		nd := &pr.nodes[i]
		if nd.act >= 0 {
			return n
		}
		ok, _ := pr.cond(nd.cond, ctx)
		if ok {
			i = nd.onTrue
		} else {
			i = nd.onFalse
		}
	}
}

// BenchmarkParse measures parsing, validating and compiling the same policy.
func BenchmarkParse(b *testing.B) {
	data := benchPolicy(b).JSON()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/parse")
}

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
