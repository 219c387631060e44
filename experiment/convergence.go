package experiment

import "math"

// Convergence reasons, as recorded with a completed experiment.
const (
	ReasonStableCosts        = "stable_costs"        // deterministic
	ReasonStableParameters   = "stable_parameters"   // deterministic-temporal
	ReasonBootstrapStability = "bootstrap_stability" // bootstrap
	// ReasonMaxIterations is for the loop: reaching max_iterations stops a
	// run without convergence.
	ReasonMaxIterations = "max_iterations"
)

// TemporalParameter is the parameter the temporal detector watches, and
// TemporalTolerance how far it may move within the window.
const (
	TemporalParameter = "initial_liquidity_fraction"
	TemporalTolerance = 0.001
)

// mannKendallAlpha is the significance level below which a trend in the
// window blocks bootstrap convergence.
const mannKendallAlpha = 0.05

// Detector decides after each iteration whether the run has converged.
type Detector interface {
	// Observe records one iteration's total cost (cents) and the parameters
	// in force (agent -> parameter -> value) and reports convergence.
	Observe(cost int64, params map[string]map[string]float64) (converged bool, reason string)
}

// NewDetector returns the detector for an evaluation mode:
// ModeDeterministic (or "deterministic-pairwise"), ModeTemporal, or
// ModeBootstrap, which is also used for any other mode since it is the
// default.
func NewDetector(mode string, c ConvergenceConfig) Detector {
	switch mode {
	case ModeDeterministic, "deterministic-pairwise":
		return &costDetector{cfg: c}
	case ModeTemporal:
		return &temporalDetector{cfg: c}
	default:
		return &bootstrapDetector{cfg: c}
	}
}

// window returns at most the last n values.
func window[T any](xs []T, n int) []T {
	if n > len(xs) {
		n = len(xs)
	}
	return xs[len(xs)-n:]
}

// costDetector: stability_window consecutive relative cost changes, each
// within stability_threshold.
type costDetector struct {
	cfg   ConvergenceConfig
	costs []float64
}

func (d *costDetector) Observe(cost int64, _ map[string]map[string]float64) (bool, string) {
	d.costs = append(d.costs, float64(cost))
	w := d.cfg.StabilityWindow
	if len(d.costs) < w+1 {
		return false, ""
	}
	recent := window(d.costs, w+1)
	for i := 1; i < len(recent); i++ {
		if relativeChange(recent[i-1], recent[i]) > d.cfg.StabilityThreshold {
			return false, ""
		}
	}
	return true, ReasonStableCosts
}

// relativeChange is |cur-prev|/|prev|; from a zero cost any change is
// infinite and no change is zero.
func relativeChange(prev, cur float64) float64 {
	diff := math.Abs(cur - prev)
	if diff == 0 {
		return 0
	}
	if prev == 0 {
		return math.Inf(1)
	}
	return diff / math.Abs(prev)
}

// temporalDetector: every agent's initial_liquidity_fraction stayed within
// TemporalTolerance over the last stability_window iterations.
type temporalDetector struct {
	cfg    ConvergenceConfig
	params []map[string]map[string]float64
}

func (d *temporalDetector) Observe(_ int64, params map[string]map[string]float64) (bool, string) {
	d.params = append(d.params, params)
	w := d.cfg.StabilityWindow
	if len(d.params) < w {
		return false, ""
	}
	recent := window(d.params, w)
	last := recent[len(recent)-1]
	if len(last) == 0 {
		return false, ""
	}
	for agent, p := range last {
		ref, ok := p[TemporalParameter]
		if !ok {
			// Nothing to watch for this agent means we cannot call it stable.
			return false, ""
		}
		for _, obs := range recent {
			v, ok := obs[agent][TemporalParameter]
			if !ok || math.Abs(v-ref) > TemporalTolerance {
				return false, ""
			}
		}
	}
	return true, ReasonStableParameters
}

// bootstrapDetector: over the last stability_window costs the coefficient of
// variation is below cv_threshold, Mann-Kendall finds no trend, and the
// current cost is within regret_threshold of the best cost seen.
type bootstrapDetector struct {
	cfg   ConvergenceConfig
	costs []float64
	best  float64
}

func (d *bootstrapDetector) Observe(cost int64, _ map[string]map[string]float64) (bool, string) {
	c := float64(cost)
	if len(d.costs) == 0 || c < d.best {
		d.best = c
	}
	d.costs = append(d.costs, c)
	if len(d.costs) < d.cfg.StabilityWindow {
		return false, ""
	}
	recent := window(d.costs, d.cfg.StabilityWindow)
	// Identical costs are stable even against a zero threshold.
	if cv := CV(recent); cv >= d.cfg.CVThreshold && cv != 0 {
		return false, ""
	}
	if MannKendall(recent).P <= mannKendallAlpha {
		return false, ""
	}
	if regret(c, d.best) > d.cfg.RegretThreshold {
		return false, ""
	}
	return true, ReasonBootstrapStability
}

// regret is (current-best)/|best|; against a best of zero only zero has no
// regret.
func regret(current, best float64) float64 {
	diff := current - best
	if diff == 0 {
		return 0
	}
	if best == 0 {
		return math.Inf(1)
	}
	return diff / math.Abs(best)
}
