// Package experiment runs policy-optimization experiments: it loads and
// validates experiment files, derives SimCash-compatible seeds, computes the
// statistics used for acceptance, and detects convergence. The optimization
// loop itself drives these pieces iteration by iteration.
package experiment
