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
// Decisions where the specification is silent:
//   - Overdue marks: a Q1 payment is marked (and charged the deadline
//     penalty) just before its agent's payment decisions, a Q2 payment in the
//     Q2 pass; both happen in the tick the payment becomes overdue.
//   - LSM settlements move the net amounts at once, even with deferred
//     crediting: an offset is simultaneous by nature, and the net payer's
//     check is on the net amount. Bilateral and multilateral outflow limits
//     count the gross amounts.
//   - Cycles longer than 3 are searched only while Q2 holds at most 200
//     payments ("when Q2 is small").
//   - Entry-disposition offsetting tries a bilateral offset of the pair as a
//     payment enters Q2. Algorithm sequencing is how our LSM always runs
//     (bilateral, then cycles).
//   - Priority escalation: within start_escalating_at_ticks of its deadline a
//     queued payment's priority is raised by floor(progress * max_boost),
//     progress = 1 - ticks_to_deadline/threshold (squared for the
//     exponential curve), capped at 10.
//   - Split children take amount/N (the remainder to the last), keep the
//     parent's deadline and arrival; the parent counts as settled when all
//     its children are. StaggerSplit releases stagger_first_now children at
//     once and one more every stagger_gap_ticks without a new decision.
//   - Release budgets (bank tree SetReleaseBudget) hold back a released
//     payment that would exceed the tick's budget, its per-counterparty cap,
//     or go to a counterparty outside focus_cpty_list.
//   - A policy that fails at run time (e.g. a division by zero) holds the
//     payment (or does nothing, in the other trees); the failure is counted
//     in Result.PolicyErrors and logged as a policy_error event.
//   - Policy fields: effective_liquidity = available_liquidity =
//     max(balance,0) + credit headroom; headroom = available - Q1 value;
//     queue1_liquidity_gap = max(0, Q1 value - available); is_eod_rush when
//     the day is 80% done; liquidity_pressure = Q1 value / available.
//   - GlobalArrivalRateChange and AgentArrivalRateChange multiply the
//     configured base rate (a later multiplier of 1.0 restores it);
//     DeadlineWindowChange scales the configured deadline range the same way.
//   - CollateralAdjustment changes the unsecured cap (never below 0).
//     ScheduledSettlement settles at once if the sender can pay, else queues
//     the payment in Q2, bypassing the policy.
//
// The event log (WithEventLog, WithEventFunc) costs nothing when off: every
// emission is behind one nil check.
package sim
