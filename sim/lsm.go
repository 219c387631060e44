package sim

import (
	"cmp"
	"slices"
)

// The LSM works on an aggregated graph of Q2: edge (i,j) holds the sum of
// queued payments from agent i to agent j. Only touched pairs are visited so
// that a large network with a short Q2 stays cheap.
type lsmState struct {
	sums    []int64 // n*n, kept zero outside a round
	touched []int32 // pair keys with a non-zero sum
	out     [][]int32
	pairs   []lsmPair
	cycles  []lsmCycle
	path    []int32
	net     []int64
}

type lsmPair struct {
	a, b   int32
	offset int64
}

type lsmCycle struct {
	nodes []int32
	total int64
}

// runLSM runs up to three rounds of bilateral offsetting and cycle
// settlement while Q2 is non-empty and a round makes progress.
func (s *Sim) runLSM() {
	for round := 0; round < 3 && len(s.q2) > 0; round++ {
		progress := false
		if s.cfg.LSM.EnableBilateral && s.bilateral() {
			progress = true
			s.passQ2()
		}
		if s.cfg.LSM.EnableCycles && len(s.q2) > 0 && s.cyclesRound() {
			progress = true
			s.passQ2()
		}
		if !progress {
			return
		}
	}
}

func (s *Sim) buildGraph() *lsmState {
	n := len(s.agents)
	if s.lsm == nil {
		s.lsm = &lsmState{sums: make([]int64, n*n), out: make([][]int32, n), net: make([]int64, n)}
	}
	g := s.lsm
	for _, k := range g.touched {
		g.sums[k] = 0
	}
	g.touched = g.touched[:0]
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Status != TxPending || !tx.inQ2 {
			continue
		}
		k := tx.Sender*int32(n) + tx.Receiver
		if g.sums[k] == 0 {
			g.touched = append(g.touched, k)
		}
		g.sums[k] += tx.Remaining
	}
	return g
}

// bilateral offsets every pair with queued payments both ways, largest
// offsettable amount first.
func (s *Sim) bilateral() bool {
	g := s.buildGraph()
	n := int32(len(s.agents))
	g.pairs = g.pairs[:0]
	for _, k := range g.touched {
		a, b := k/n, k%n
		if a > b {
			continue
		}
		ab, ba := g.sums[k], g.sums[b*n+a]
		if ab > 0 && ba > 0 {
			g.pairs = append(g.pairs, lsmPair{a: a, b: b, offset: min(ab, ba)})
		}
	}
	slices.SortFunc(g.pairs, func(x, y lsmPair) int {
		if c := cmp.Compare(y.offset, x.offset); c != 0 {
			return c
		}
		if c := cmp.Compare(x.a, y.a); c != 0 {
			return c
		}
		return cmp.Compare(x.b, y.b)
	})
	progress := false
	for _, p := range g.pairs {
		if s.offsetPair(p.a, p.b, g.sums[p.a*n+p.b], g.sums[p.b*n+p.a], -1) {
			progress = true
		}
	}
	return progress
}

// offsetPair settles every queued payment between a and b (plus extra, a
// payment entering Q2, when >= 0) at full value if the net payer can cover
// the net amount and both sides' outflow limits allow their gross outflow.
func (s *Sim) offsetPair(a, b int32, ab, ba int64, extra int32) bool {
	if ab <= 0 || ba <= 0 {
		return false
	}
	A, B := s.agents[a], s.agents[b]
	if !A.limitsAllow(b, ab) || !B.limitsAllow(a, ba) {
		return false
	}
	if ab > ba && A.available() < ab-ba {
		return false
	}
	if ba > ab && B.available() < ba-ab {
		return false
	}
	A.balance += ba - ab
	B.balance += ab - ba
	A.recordOutflow(b, ab)
	B.recordOutflow(a, ba)
	if s.log != nil {
		s.emit(LogEntry{Kind: EvLSMBilateral, Agent: a, Counterparty: b, Tx: -1, Amount: min(ab, ba), Value: ab - ba})
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Status == TxPending && tx.inQ2 && ((tx.Sender == a && tx.Receiver == b) || (tx.Sender == b && tx.Receiver == a)) {
			s.finish(tx, EvLSMSettle)
		}
	}
	if extra >= 0 {
		s.finish(&s.txs[extra], EvLSMSettle)
	}
	return true
}

// offsetOnEntry is entry-disposition offsetting: a payment entering Q2 is
// offset at once against queued payments in the other direction.
func (s *Sim) offsetOnEntry(tx *Tx) bool {
	var ab, ba int64
	for _, id := range s.q2 {
		q := &s.txs[id]
		if q.Status != TxPending || !q.inQ2 {
			continue
		}
		switch {
		case q.Sender == tx.Sender && q.Receiver == tx.Receiver:
			ab += q.Remaining
		case q.Sender == tx.Receiver && q.Receiver == tx.Sender:
			ba += q.Remaining
		}
	}
	if ba == 0 {
		return false
	}
	return s.offsetPair(tx.Sender, tx.Receiver, ab+tx.Remaining, ba, tx.ID)
}

// cyclesRound settles multilateral cycles, largest total first.
func (s *Sim) cyclesRound() bool {
	g := s.buildGraph()
	n := int32(len(s.agents))
	for i := range g.out {
		g.out[i] = g.out[i][:0]
	}
	for _, k := range g.touched {
		g.out[k/n] = append(g.out[k/n], k%n)
	}
	for i := range g.out {
		slices.Sort(g.out[i])
	}
	maxLen := 3
	if s.cfg.LSM.MaxCycleLength > 3 && len(s.q2) <= 200 {
		maxLen = s.cfg.LSM.MaxCycleLength
	}
	g.cycles = g.cycles[:0]
	for start := int32(0); start < n; start++ {
		if len(g.out[start]) == 0 {
			continue
		}
		g.path = append(g.path[:0], start)
		s.findCycles(g, start, maxLen)
	}
	slices.SortStableFunc(g.cycles, func(x, y lsmCycle) int { return cmp.Compare(y.total, x.total) })
	limit := s.cfg.LSM.MaxCyclesPerTick
	if limit <= 0 {
		limit = 10
	}
	settled := 0
	for _, c := range g.cycles {
		if settled >= limit {
			break
		}
		if s.settleCycle(g, c.nodes) {
			settled++
		}
	}
	return settled > 0
}

func (s *Sim) findCycles(g *lsmState, start int32, maxLen int) {
	n := int32(len(s.agents))
	last := g.path[len(g.path)-1]
	for _, next := range g.out[last] {
		if next == start && len(g.path) >= 3 {
			var total int64
			for i, v := range g.path {
				w := g.path[(i+1)%len(g.path)]
				total += g.sums[v*n+w]
			}
			g.cycles = append(g.cycles, lsmCycle{nodes: slices.Clone(g.path), total: total})
			continue
		}
		if next <= start || len(g.path) >= maxLen || slices.Contains(g.path, next) {
			continue
		}
		g.path = append(g.path, next)
		s.findCycles(g, start, maxLen)
		g.path = g.path[:len(g.path)-1]
	}
}

// settleCycle settles every queued payment on the cycle's edges if each net
// payer can cover its net position and limits allow the gross outflows.
func (s *Sim) settleCycle(g *lsmState, nodes []int32) bool {
	n := int32(len(s.agents))
	k := len(nodes)
	for i, v := range nodes {
		w := nodes[(i+1)%k]
		if g.sums[v*n+w] <= 0 {
			return false // an earlier cycle used this edge
		}
	}
	for i, v := range nodes {
		w := nodes[(i+1)%k]
		prev := nodes[(i+k-1)%k]
		out := g.sums[v*n+w]
		in := g.sums[prev*n+v]
		a := s.agents[v]
		if !a.limitsAllow(w, out) {
			return false
		}
		if out > in && a.available() < out-in {
			return false
		}
	}
	for i, v := range nodes {
		w := nodes[(i+1)%k]
		prev := nodes[(i+k-1)%k]
		a := s.agents[v]
		a.balance += g.sums[prev*n+v] - g.sums[v*n+w]
		a.recordOutflow(w, g.sums[v*n+w])
	}
	if s.log != nil {
		var total int64
		for i, v := range nodes {
			total += g.sums[v*n+nodes[(i+1)%k]]
		}
		s.emit(LogEntry{Kind: EvLSMCycle, Agent: nodes[0], Counterparty: -1, Tx: -1, Amount: total, Value: int64(k)})
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		if tx.Status != TxPending || !tx.inQ2 {
			continue
		}
		for i, v := range nodes {
			if tx.Sender == v && tx.Receiver == nodes[(i+1)%k] {
				s.finish(tx, EvLSMSettle)
				break
			}
		}
	}
	for i, v := range nodes {
		g.sums[v*n+nodes[(i+1)%k]] = 0
	}
	return true
}
