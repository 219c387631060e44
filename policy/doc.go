// Package policy parses, validates, compiles and evaluates SimCash JSON
// decision-tree policies.
//
// A policy document holds named numeric parameters and up to four trees
// (payment_tree, bank_tree, strategic_collateral_tree,
// end_of_tick_collateral_tree). Parse decodes a document, checks it (unique
// node ids per tree, depth, known fields, parameters, actions legal for their
// tree, required action parameters, no division by a literal zero) and
// compiles each tree into flat slices with field indices, state slots and
// parameter values resolved, so that Decide does no map lookups and no
// allocations.
//
// Semantics follow the reference interpreter:
//   - == is |l-r| < 1e-9, != its negation, and <= / >= also hold within 1e-9.
//   - "/" by a value with |v| < 2.2e-16 (f64 epsilon) is a runtime error; div0
//     returns its default when |denominator| < 1e-9. A literal zero divisor is
//     rejected at parse time.
//   - Literals in expressions must be numbers or booleans (true = 1); strings
//     are accepted only where an action expects text (reason, key,
//     rtgs_priority, priority_flag, focus_counterparties).
//   - State registers (fields named bank_state_*) read 0 until set.
//   - Amounts and budgets computed by actions are truncated toward zero, as
//     the reference casts them to integers; PostCollateral and
//     WithdrawCollateral with a truncated amount <= 0 become HoldCollateral.
//
// Decisions taken where the reference is lax or inconsistent:
//   - Action parameters the action does not know are errors (they are almost
//     always typos in LLM proposals); "reason" and "description" are accepted
//     on every action.
//   - SetReleaseBudget reads focus_counterparties and max_per_counterparty,
//     as the reference interpreter does. The reference's own policy files
//     spell them focus_cpty_list and max_per_cpty, which its interpreter
//     never reads; we accept and type-check that spelling but, to give the
//     reference's numbers for those files, it has no effect.
//   - A payment action (Hold) in the bank tree compiles to NoAction, which is
//     what the reference does at run time; reference policy files rely on it.
//     Every other action outside its tree is an error.
//   - Literal strings in expressions, unknown parameters and unknown fields
//     are parse errors rather than run-time errors.
//   - A document must define at least one tree; node ids are unique per tree.
//
// Runtime: the caller owns a Context per agent, fills Context.V (then calls
// Context.Derive for the fields computable from others) and sizes
// Context.State to len(StateKeys()). Decide returns a *DecideError naming the
// tree and node for a division by zero or an out-of-range action parameter
// (num_splits < 2, stagger_first_now > num_splits).
//
// ParseWith applies an experiment's policy_constraints: parameter names,
// types and bounds, allowed fields (state registers included) and allowed
// actions per tree (a tree absent from Options.Actions may not appear). The
// returned *ValidationError lists every problem, each naming the tree and
// node, or the parameter.
package policy
