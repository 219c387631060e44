// Package sim is the settlement engine: a real-time gross settlement system
// with banks (agents), payments, the banks' own queues (Q1), the central
// queue (Q2), liquidity pools, credit and collateral, costs in int64 cents,
// the liquidity-saving mechanism (LSM) and scenario events. It reproduces the
// reference simulator (SimCash) to the cent for the same scenario, policies
// and seed; ../shared/spec/engine.md is the specification and one tick runs
// in exactly its order (see Sim.Step).
//
// Build a Config (package scenario loads one from YAML), then
//
//	s, err := sim.New(cfg, sim.WithSeed(7))
//	res := s.Run()
//
// Where the specification is silent the engine follows SimCash's Rust
// engine (../shared/simcash-src), checked with the differential test in
// package oracle:
//   - Tick order: scenario events, arrivals, strategic collateral trees,
//     bank trees, collateral timers, priority escalation, Q1 ordering,
//     payment decisions, Q2 withdraw/resubmit decisions, settlement of
//     released payments, Q2 pass, LSM, end-of-tick collateral trees,
//     deferred credits, costs, end of day.
//   - A payment is marked overdue by the Q2 pass, or when costs accrue if it
//     is still in Q1; the deadline penalty is charged only to payments
//     still queued when costs accrue in the tick they went overdue.
//   - Day 0 allocates liquidity_allocation_fraction of the pool; later days
//     a JSON policy's initial_liquidity_fraction, or the whole pool.
//   - The LSM runs up to three rounds of bilateral offsetting and cycle
//     settlement (triangles u<v<w in agent order when Q2's graph has a
//     strongly connected component of 3+, payment-level cycles of 4+ while
//     Q2 holds at most 100 payments), each followed by a Q2 pass that
//     credits at once even with deferred crediting.
//   - entry_disposition_offsetting and algorithm_sequencing change only
//     SimCash's event names: no effect here.
//   - Priority mode orders Q2 by RTGS priority (Normal unless a
//     ResubmitToRtgs declared another), then submission tick; a Release's
//     priority_flag sets the payment's own priority only.
//   - A split ignores the divisible flag; StaggerSplit children beyond
//     stagger_first_now wait in Q1 for the next decisions.
//   - ScheduledSettlement settles at once when the sender has the
//     liquidity, else does nothing (no payment is created).
//   - An agent rate change multiplies the rate in force and becomes the
//     base a later global change multiplies.
//   - Priority escalation is linear whatever its curve: boost =
//     round(max_boost x (1 - ticks_to_deadline/start_escalating_at_ticks))
//     on the original priority, never lowering the current one.
//   - Settled counts follow SimCash's report: a split payment counts when
//     each part settled; a part that was split again counts only when its
//     own parts all settled through RTGS (not the LSM).
//
// Where SimCash's engine fails the run, ours goes on, as documented here:
//   - CollateralAdjustment below zero: the unsecured cap stops at 0.
//   - A collateral post above the remaining capacity posts what fits.
//   - A split into more parts than the amount has cents splits into
//     one-cent parts; num_splits < 2 is a policy error and the payment is
//     held.
//   - A policy that fails at run time (e.g. a division by zero, or a field
//     SimCash lacks such as release_budget_remaining) holds the payment (or
//     does nothing in the other trees); the failure is counted in
//     Result.PolicyErrors and logged as a policy_error event.
//
// The event log (WithEventLog, WithEventFunc) costs nothing when off: every
// emission is behind one nil check.
package sim
