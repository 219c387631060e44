package sim

import "math"

// samplePriority draws a payment priority (sample_priority): Uniform is
// an integer in [Min, Max], Categorical a weighted choice of Values; both
// capped at 10.
func (s *Sim) samplePriority(d *Distribution) int {
	switch d.Kind {
	case Uniform:
		return int(min(s.rng.Range(d.Min, d.Max+1), 10))
	case Categorical:
		c := d.Cat
		if c == nil || len(c.Values) == 0 {
			return 5
		}
		var total float64
		for _, w := range c.Weights {
			total += w
		}
		if total <= 0 {
			return int(c.Values[0])
		}
		target := s.rng.Float() * total
		for i, w := range c.Weights {
			target -= w
			if target <= 0 && i < len(c.Values) {
				return int(min(c.Values[i], 10))
			}
		}
		return int(min(c.Values[len(c.Values)-1], 10))
	}
	return 5
}

// band is an agent's runtime state for one arrival band.
type band struct {
	cfg        *ArrivalBand
	lo, hi     int // priority range
	expNeg     float64
	logNormal  [2]float64
	weights    []float64 // per candidate; nil = uniform
	weightSum  float64
	candidates []int32
}

// initBands prepares an agent's arrival bands, urgent, normal, low.
func (s *Sim) initBands(a *agent) {
	b := a.cfg.Bands
	for _, x := range []struct {
		c      *ArrivalBand
		lo, hi int
	}{{b.Urgent, 8, 10}, {b.Normal, 4, 7}, {b.Low, 0, 3}} {
		if x.c == nil {
			continue
		}
		bd := band{cfg: x.c, lo: x.lo, hi: x.hi, expNeg: math.Exp(-x.c.RatePerTick), candidates: a.candidates}
		if x.c.Amount.Kind == LogNormal {
			bd.logNormal[0], bd.logNormal[1] = logNormalParams(&x.c.Amount)
		}
		bd.weights, bd.weightSum = s.weightsFor(a.candidates, x.c.CounterpartyWeights)
		a.bandList = append(a.bandList, bd)
	}
}

// bandArrivals draws an agent's arrivals band by band (generate_from_bands).
func (s *Sim) bandArrivals(a *agent, runEnd, day int) {
	for i := range a.bandList {
		bd := &a.bandList[i]
		n := 0
		if bd.cfg.RatePerTick > 0 {
			n = s.rng.poissonL(bd.expNeg)
		}
		for k := 0; k < n; k++ {
			amount := s.drawAmount(&bd.cfg.Amount, bd.logNormal)
			cp := s.pickCounterparty(bd.candidates, bd.weights, bd.weightSum)
			dl := s.arrivalDeadline(int64(bd.cfg.DeadlineMin), int64(bd.cfg.DeadlineMax), runEnd, day)
			prio := bd.lo
			if bd.lo != bd.hi {
				prio = int(s.rng.Range(int64(bd.lo), int64(bd.hi)+1))
			}
			id := s.newTx(a.idx, cp, amount, dl, prio, bd.cfg.Divisible, -1)
			s.enqueueArrival(id)
		}
	}
}
