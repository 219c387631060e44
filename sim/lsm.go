package sim

import (
	"cmp"
	"slices"
)

// The LSM follows SimCash's run_lsm_pass: up to three rounds, each
// bilateral offsetting, then cycle settlement, each followed by a Q2 pass
// when it settled (or, for cycles, found) anything, until a round settles
// nothing more. Its Q2 passes credit receivers at once even with deferred
// crediting, and its own settlements debit each sender the gross amount
// and credit the receivers (deferred or not), as SimCash does.
type lsmState struct {
	sums    []int64 // n*n, kept zero outside a round
	txs     [][]int32
	touched []int32 // pair keys with a non-zero entry
	pairs   []lsmPair
	cycles  []lsmCycle
	out     [][]int32 // aggregated graph: receivers of each sender, ascending
	// DFS cycle search
	adj   [][]lsmEdge
	path  []lsmEdge
	onDFS []bool
	// Tarjan
	index, low []int
	onStack    []bool
	stack      []int32
	counter    int
	bigSCC     bool
}

type lsmPair struct {
	a, b   int32
	offset int64
}

type lsmEdge struct {
	to int32
	tx int32
}

type lsmCycle struct {
	agents []int32 // distinct agents in cycle order
	txs    []int32
	total  int64
}

const (
	lsmRounds    = 3
	dfsQueueSize = 100 // cycles of 4+ are searched only while Q2 is this short
)

func (s *Sim) runLSM() {
	for round := 0; round < lsmRounds && len(s.q2) > 0; round++ {
		var value int64
		if s.cfg.LSM.EnableBilateral {
			v, settled := s.bilateral()
			value += v
			if settled {
				value += s.processQueue(false)
			}
		}
		if s.cfg.LSM.EnableCycles && len(s.q2) > 0 {
			v, found := s.cyclesRound()
			value += v
			if found {
				value += s.processQueue(false)
			}
		}
		if value == 0 {
			return
		}
	}
}

// buildGraph aggregates Q2 by (sender, receiver): summed remaining amounts
// and the payments in queue order.
func (s *Sim) buildGraph() *lsmState {
	n := len(s.agents)
	if s.lsm == nil {
		s.lsm = &lsmState{sums: make([]int64, n*n), txs: make([][]int32, n*n)}
	}
	g := s.lsm
	for _, k := range g.touched {
		g.sums[k] = 0
		g.txs[k] = g.txs[k][:0]
	}
	g.touched = g.touched[:0]
	for _, id := range s.q2 {
		tx := &s.txs[id]
		k := tx.Sender*int32(n) + tx.Receiver
		if len(g.txs[k]) == 0 {
			g.touched = append(g.touched, k)
		}
		g.sums[k] += tx.Remaining
		g.txs[k] = append(g.txs[k], id)
	}
	return g
}

// bilateral offsets every pair of agents with payments queued both ways,
// largest offsettable amount first. It returns the offsettable value of
// the pairs found (SimCash counts it as progress whether or not the pair
// settled) and whether any pair settled.
func (s *Sim) bilateral() (int64, bool) {
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
	var value int64
	settled := false
	for _, p := range g.pairs {
		value += p.offset
		if s.offsetPair(g, p.a, p.b) {
			settled = true
		}
	}
	if settled {
		s.q2 = slices.DeleteFunc(s.q2, func(id int32) bool { return s.txs[id].Status == TxSettled })
	}
	return value, settled
}

// offsetPair settles every queued payment between a and b at full value if
// the net payer stays within its overdraft limit and both sides' outflow
// limits allow their gross outflow (settle_bilateral_pair).
func (s *Sim) offsetPair(g *lsmState, a, b int32) bool {
	n := int32(len(s.agents))
	txAB, txBA := g.txs[a*n+b], g.txs[b*n+a]
	var ab, ba int64
	for _, id := range txAB {
		ab += s.txs[id].Remaining
	}
	for _, id := range txBA {
		ba += s.txs[id].Remaining
	}
	payer, net := s.agents[b], ba-ab
	if ab > ba {
		payer, net = s.agents[a], ab-ba
	}
	if payer.balance-net < -payer.allowedOverdraft() {
		return false
	}
	A, B := s.agents[a], s.agents[b]
	if len(txAB) > 0 && !A.limitsAllow(b, ab) {
		return false
	}
	if len(txBA) > 0 && !B.limitsAllow(a, ba) {
		return false
	}
	if s.log != nil {
		s.emit(LogEntry{Kind: EvLSMBilateral, Agent: a, Counterparty: b, Tx: -1, Amount: min(ab, ba), Value: ab - ba})
	}
	for _, ids := range [2][]int32{txAB, txBA} {
		for _, id := range ids {
			tx := &s.txs[id]
			s.transfer(tx, s.cfg.DeferredCrediting)
			s.finish(tx, EvLSMSettle)
		}
	}
	return true
}

// cyclesRound finds cycles in Q2 (triangles of the aggregated graph, then
// payment-level cycles of 4 or more agents while Q2 is short), largest
// total first, and tries the first max_cycles_per_tick of them. It returns
// the value settled and whether any cycle was found.
func (s *Sim) cyclesRound() (int64, bool) {
	g := s.buildGraph()
	g.cycles = g.cycles[:0]
	s.triangles(g)
	maxLen := s.cfg.LSM.MaxCycleLength
	if maxLen == 0 {
		maxLen = 4 // SimCash's default
	}
	if maxLen >= 4 && len(s.q2) <= dfsQueueSize {
		s.longCycles(g, maxLen)
	}
	if len(g.cycles) == 0 {
		return 0, false
	}
	slices.SortStableFunc(g.cycles, func(x, y lsmCycle) int { return cmp.Compare(y.total, x.total) })
	limit := s.cfg.LSM.MaxCyclesPerTick
	if limit == 0 {
		limit = 10 // SimCash's default
	}
	var value int64
	settled := false
	for i, c := range g.cycles {
		if i >= limit {
			break
		}
		if v, ok := s.settleCycle(c); ok {
			value += v
			settled = true
		}
	}
	if settled {
		s.q2 = slices.DeleteFunc(s.q2, func(id int32) bool { return s.txs[id].Status == TxSettled })
	}
	return value, true
}

// triangles finds u->v->w->u with u < v < w (agent order) over the
// aggregated graph, each edge carrying all its payments. SimCash looks
// only when Q2's graph has a strongly connected component of 3 or more
// agents, and only in this orientation.
func (s *Sim) triangles(g *lsmState) {
	n := int32(len(s.agents))
	if len(g.out) != int(n) {
		g.out = make([][]int32, n)
	}
	for i := range g.out {
		g.out[i] = g.out[i][:0]
	}
	for _, k := range g.touched {
		g.out[k/n] = append(g.out[k/n], k%n)
	}
	for i := range g.out {
		slices.Sort(g.out[i])
	}
	if !s.hasBigSCC(g) {
		return
	}
	for u := int32(0); u < n; u++ {
		for _, v := range g.out[u] {
			if v <= u {
				continue
			}
			for _, w := range g.out[v] {
				if w <= v || len(g.txs[w*n+u]) == 0 {
					continue
				}
				c := lsmCycle{agents: []int32{u, v, w}}
				for _, k := range [3]int32{u*n + v, v*n + w, w*n + u} {
					c.txs = append(c.txs, g.txs[k]...)
					c.total += g.sums[k]
				}
				g.cycles = append(g.cycles, c)
			}
		}
	}
}

// hasBigSCC reports whether the aggregated graph of Q2 has a strongly
// connected component of at least 3 agents (Tarjan).
func (s *Sim) hasBigSCC(g *lsmState) bool {
	n := len(s.agents)
	if len(g.index) != n {
		g.index, g.low, g.onStack = make([]int, n), make([]int, n), make([]bool, n)
	}
	for i := range g.index {
		g.index[i] = -1
		g.onStack[i] = false
	}
	g.stack, g.counter, g.bigSCC = g.stack[:0], 0, false
	for v := 0; v < n && !g.bigSCC; v++ {
		if g.index[v] < 0 && len(g.out[v]) > 0 {
			s.strongConnect(g, int32(v))
		}
	}
	return g.bigSCC
}

func (s *Sim) strongConnect(g *lsmState, v int32) {
	g.index[v], g.low[v] = g.counter, g.counter
	g.counter++
	g.stack = append(g.stack, v)
	g.onStack[v] = true
	for _, w := range g.out[v] {
		if g.index[w] < 0 {
			s.strongConnect(g, w)
			g.low[v] = min(g.low[v], g.low[w])
		} else if g.onStack[w] {
			g.low[v] = min(g.low[v], g.index[w])
		}
	}
	if g.low[v] == g.index[v] {
		size := 0
		for {
			w := g.stack[len(g.stack)-1]
			g.stack = g.stack[:len(g.stack)-1]
			g.onStack[w] = false
			size++
			if w == v {
				break
			}
		}
		if size >= 3 {
			g.bigSCC = true
		}
	}
}

// longCycles finds payment-level cycles of 4 to maxLen agents by
// depth-first search from every sender in agent order, over each sender's
// payments in queue order (detect_cycles_dfs). A cycle is found once from
// each of its agents.
func (s *Sim) longCycles(g *lsmState, maxLen int) {
	n := len(s.agents)
	if len(g.adj) != n {
		g.adj = make([][]lsmEdge, n)
		g.onDFS = make([]bool, n)
	}
	for i := range g.adj {
		g.adj[i] = g.adj[i][:0]
	}
	for _, id := range s.q2 {
		tx := &s.txs[id]
		g.adj[tx.Sender] = append(g.adj[tx.Sender], lsmEdge{to: tx.Receiver, tx: id})
	}
	for start := int32(0); start < int32(n); start++ {
		if len(g.adj[start]) == 0 {
			continue
		}
		g.path = g.path[:0]
		s.dfs(g, start, start, maxLen)
	}
}

func (s *Sim) dfs(g *lsmState, start, cur int32, maxLen int) {
	if len(g.path) >= maxLen {
		return
	}
	g.onDFS[cur] = true
	for _, e := range g.adj[cur] {
		if e.to == start && len(g.path) > 0 {
			if len(g.path)+1 >= 4 {
				c := lsmCycle{agents: []int32{start}}
				for _, p := range g.path {
					c.agents = append(c.agents, p.to)
					c.txs = append(c.txs, p.tx)
					c.total += s.txs[p.tx].Remaining
				}
				c.txs = append(c.txs, e.tx)
				c.total += s.txs[e.tx].Remaining
				g.cycles = append(g.cycles, c)
			}
			continue
		}
		if e.to != start && !g.onDFS[e.to] {
			g.path = append(g.path, e)
			s.dfs(g, start, e.to, maxLen)
			g.path = g.path[:len(g.path)-1]
		}
	}
	g.onDFS[cur] = false
}

// settleCycle settles every payment of c at full value if none is settled
// yet, every agent with a net outflow can cover it from its available
// liquidity within its overdraft limit, and each payment fits its sender's
// outflow limits (settle_cycle).
func (s *Sim) settleCycle(c lsmCycle) (int64, bool) {
	for _, id := range c.txs {
		if s.txs[id].Status == TxSettled {
			return 0, false
		}
	}
	net := s.scratchNet()
	for _, id := range c.txs {
		tx := &s.txs[id]
		net[tx.Sender] -= tx.Remaining
		net[tx.Receiver] += tx.Remaining
	}
	ok := true
	for _, v := range c.agents {
		if p := net[v]; p < 0 {
			a := s.agents[v]
			if a.available() < -p || a.balance+p < -a.allowedOverdraft() {
				ok = false
			}
		}
	}
	for _, v := range c.agents {
		net[v] = 0
	}
	if !ok {
		return 0, false
	}
	for _, id := range c.txs {
		tx := &s.txs[id]
		if !s.agents[tx.Sender].limitsAllow(tx.Receiver, tx.Remaining) {
			return 0, false
		}
	}
	var total int64
	for _, id := range c.txs {
		tx := &s.txs[id]
		total += tx.Remaining
		s.transfer(tx, s.cfg.DeferredCrediting)
		s.finish(tx, EvLSMSettle)
	}
	if s.log != nil {
		s.emit(LogEntry{Kind: EvLSMCycle, Agent: c.agents[0], Counterparty: -1, Tx: -1, Amount: total, Value: int64(len(c.agents))})
	}
	return total, true
}

func (s *Sim) scratchNet() []int64 {
	if len(s.net) != len(s.agents) {
		s.net = make([]int64, len(s.agents))
	}
	return s.net
}
