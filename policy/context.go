package policy

import "math"

// Derive fills the context fields that are functions of other fields, so
// the simulator only fills the base ones. Call it after filling balance,
// credit_limit, credit_used, posted_collateral, collateral_haircut, amount
// and remaining_amount; it overwrites settled_amount, is_using_credit,
// is_overdraft_capped, unsecured_cap, allowed_overdraft_limit,
// overdraft_headroom, overdraft_utilization and
// required_collateral_for_usage with the reference's formulas.
//
// The fields it cannot derive (overdue_duration, liquidity_buffer,
// incoming_expected_count, queue2_*, ticks_to_nearest_queue2_deadline) stay
// as the caller set them.
func (c *Context) Derive() {
	v := &c.V
	v[FSettledAmount] = v[FAmount] - v[FRemainingAmount]
	v[FIsUsingCredit] = 0
	if v[FBalance] < 0 {
		v[FIsUsingCredit] = 1
	}
	v[FIsOverdraftCapped] = 1
	v[FUnsecuredCap] = v[FCreditLimit]
	limit := math.Floor(v[FPostedCollateral]*(1-v[FCollateralHaircut])) + v[FCreditLimit]
	v[FAllowedOverdraftLimit] = limit
	v[FOverdraftHeadroom] = limit - v[FCreditUsed]
	v[FOverdraftUtilization] = 0
	if limit > 0 {
		v[FOverdraftUtilization] = v[FCreditUsed] / limit
	}
	v[FRequiredCollateralForUsage] = 0
	if need := v[FCreditUsed] - v[FCreditLimit]; need > 0 && v[FCollateralHaircut] < 1 {
		v[FRequiredCollateralForUsage] = need / (1 - v[FCollateralHaircut])
	}
}

// NoQueue2Deadline is what queue2_nearest_deadline holds when the agent has
// nothing in Q2 (the reference's usize::MAX as a float); the matching
// ticks_to_nearest_queue2_deadline is +Inf.
const NoQueue2Deadline = float64(math.MaxUint64)
