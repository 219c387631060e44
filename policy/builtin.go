package policy

// builtins are our own documents for the reference system's named policies,
// with the reference defaults for their decision parameters; scenario
// options such as urgency_threshold are applied by the caller with
// WithParams. Unlike the reference's JSON files they carry no
// initial_liquidity_fraction: the reference engine takes a built-in agent's
// pool allocation from the scenario (liquidity_allocation_fraction), and a
// parameter here would silently override it.
var builtins = map[string]string{
	"Fifo": `{
  "version": "1.0",
  "policy_id": "fifo_policy",
  "description": "Release every queued payment at once, in queue order.",
  "parameters": {},
  "payment_tree": {"type": "action", "node_id": "release_all", "action": "Release"}
}`,

	"Deadline": `{
  "version": "1.0",
  "policy_id": "deadline_policy",
  "description": "Drop payments at or past their deadline, release urgent ones, hold the rest.",
  "parameters": {"urgency_threshold": 5.0},
  "payment_tree": {
    "type": "condition", "node_id": "expired",
    "condition": {"op": ">=", "left": {"field": "current_tick"}, "right": {"field": "deadline_tick"}},
    "on_true": {"type": "action", "node_id": "drop_expired", "action": "Drop"},
    "on_false": {
      "type": "condition", "node_id": "urgent",
      "condition": {"op": "<=", "left": {"field": "ticks_to_deadline"}, "right": {"param": "urgency_threshold"}},
      "on_true": {"type": "action", "node_id": "release_urgent", "action": "Release"},
      "on_false": {"type": "action", "node_id": "hold_not_urgent", "action": "Hold",
                   "parameters": {"reason": {"value": "NearDeadline"}}}
    }
  }
}`,

	"LiquidityAware": `{
  "version": "1.0",
  "policy_id": "liquidity_aware_policy",
  "description": "Release urgent payments when they can be paid; otherwise keep target_buffer of balance.",
  "parameters": {"target_buffer": 50000.0, "urgency_threshold": 5.0},
  "payment_tree": {
    "type": "condition", "node_id": "expired",
    "condition": {"op": ">=", "left": {"field": "current_tick"}, "right": {"field": "deadline_tick"}},
    "on_true": {"type": "action", "node_id": "drop_expired", "action": "Drop"},
    "on_false": {
      "type": "condition", "node_id": "urgent_or_no_buffer",
      "condition": {"op": "or", "conditions": [
        {"op": "<=", "left": {"field": "ticks_to_deadline"}, "right": {"param": "urgency_threshold"}},
        {"op": "==", "left": {"param": "target_buffer"}, "right": {"value": 0}}
      ]},
      "on_true": {
        "type": "condition", "node_id": "can_pay",
        "condition": {"op": ">=", "left": {"field": "effective_liquidity"}, "right": {"field": "remaining_amount"}},
        "on_true": {"type": "action", "node_id": "release_payable", "action": "Release"},
        "on_false": {"type": "action", "node_id": "hold_unpayable", "action": "Hold",
                     "parameters": {"reason": {"value": "InsufficientLiquidity"}}}
      },
      "on_false": {
        "type": "condition", "node_id": "breaks_buffer",
        "condition": {"op": "<",
          "left": {"compute": {"op": "-", "left": {"field": "balance"}, "right": {"field": "remaining_amount"}}},
          "right": {"param": "target_buffer"}},
        "on_true": {"type": "action", "node_id": "hold_for_buffer", "action": "Hold",
                    "parameters": {"reason": {"value": "InsufficientLiquidity"}}},
        "on_false": {"type": "action", "node_id": "release_within_buffer", "action": "Release"}
      }
    }
  }
}`,

	"LiquiditySplitting": `{
  "version": "1.0",
  "policy_id": "liquidity_splitting_policy",
  "description": "Drop expired payments; release what the balance covers; otherwise split (max_splits parts when within 5 ticks of the deadline, else 2) while the balance is positive, else hold.",
  "parameters": {"max_splits": 4.0, "min_split_amount": 10000.0},
  "payment_tree": {
    "type": "condition", "node_id": "expired",
    "condition": {"op": "<=", "left": {"field": "deadline_tick"}, "right": {"field": "current_tick"}},
    "on_true": {"type": "action", "node_id": "drop_expired", "action": "Drop"},
    "on_false": {
      "type": "condition", "node_id": "urgent",
      "condition": {"op": "<=", "left": {"field": "ticks_to_deadline"}, "right": {"value": 5}},
      "on_true": {
        "type": "condition", "node_id": "urgent_affordable",
        "condition": {"op": ">=", "left": {"field": "balance"}, "right": {"field": "amount"}},
        "on_true": {"type": "action", "node_id": "urgent_release", "action": "Release"},
        "on_false": {
          "type": "condition", "node_id": "urgent_some_balance",
          "condition": {"op": ">", "left": {"field": "balance"}, "right": {"value": 0}},
          "on_true": {"type": "action", "node_id": "urgent_split", "action": "Split",
                      "parameters": {"num_splits": {"param": "max_splits"}}},
          "on_false": {"type": "action", "node_id": "urgent_hold", "action": "Hold",
                       "parameters": {"reason": {"value": "InsufficientLiquidity"}}}
        }
      },
      "on_false": {
        "type": "condition", "node_id": "affordable",
        "condition": {"op": ">=", "left": {"field": "balance"}, "right": {"field": "amount"}},
        "on_true": {"type": "action", "node_id": "release", "action": "Release"},
        "on_false": {
          "type": "condition", "node_id": "some_balance",
          "condition": {"op": ">", "left": {"field": "balance"}, "right": {"value": 0}},
          "on_true": {"type": "action", "node_id": "split_two", "action": "Split",
                      "parameters": {"num_splits": {"value": 2}}},
          "on_false": {"type": "action", "node_id": "hold", "action": "Hold",
                       "parameters": {"reason": {"value": "InsufficientLiquidity"}}}
        }
      }
    }
  }
}`,

	"MockSplitting": `{
  "version": "1.0",
  "policy_id": "mock_splitting_policy",
  "description": "Split every payment into num_splits parts (a test policy).",
  "parameters": {"num_splits": 2.0},
  "payment_tree": {"type": "action", "node_id": "split_all", "action": "Split",
                   "parameters": {"num_splits": {"param": "num_splits"}}}
}`,
}
