package llmopt

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"simcash/optimizer"
	"simcash/policy"
)

// domainPrompt explains the game. It is what Config.SystemPrompt replaces.
const domainPrompt = `You are an expert in payment-system liquidity management. You design the payment policy of ONE bank
(an "agent") in a simulated RTGS (real-time gross settlement) system, to minimise that bank's total cost.

How the system works:
- Time runs in ticks; a day has a fixed number of ticks. Payments arrive at the bank with an amount, a deadline tick
  and a priority. Money is in integer cents.
- New outgoing payments wait in the bank's own queue (Q1). Every tick the bank's payment_tree decides, for each Q1
  payment, whether to Release it to the RTGS, Hold it, Split it, and so on.
- A released payment settles at once, in full, if the bank has enough available liquidity (balance plus unused
  credit). Otherwise it waits in the central RTGS queue (Q2) and settles as soon as incoming payments bring enough
  liquidity. Liquidity received from other banks can be recycled to pay your own payments.
- Liquidity pool: a bank may have a liquidity_pool. At the start of every day it moves
  floor(liquidity_pool x initial_liquidity_fraction) into its settlement balance, where initial_liquidity_fraction is
  the policy parameter (0.0 to 1.0). The allocated amount costs the liquidity rate every tick, used or not, and is
  returned at the end of the day. Too little liquidity delays payments; too much costs opportunity cost.
- Costs are charged per tick and summed: liquidity (allocated pool liquidity), delay (for every payment still
  waiting in Q1 or Q2, per cent per tick, multiplied when overdue), overdraft (negative balance), collateral
  (posted collateral), a deadline penalty once when a payment becomes overdue, an end-of-day penalty per payment
  still unsettled past its deadline at the end of a day, and split friction per extra piece when splitting.
- Your proposal is evaluated against your current policy on the same simulated days; it is accepted only if it
  lowers your cost. You see only your own bank's figures.`

// actionRoles says what each action does; parameter names come from the
// policy package so that they always match what the engine accepts. Every
// parameter value is a Value object ({"value": ...}, {"param": ...},
// {"field": ...} or {"compute": ...}).
var actionRoles = map[string]string{
	"Release":            `release to the RTGS now (priority_flag: {"value": "HIGH" | "MEDIUM" | "LOW"}).`,
	"ReleaseWithCredit":  `release, using credit if needed.`,
	"Split":              `split into num_splits (>= 2) equal pieces, all released now; split friction per extra piece.`,
	"PaceAndRelease":     `split into num_splits pieces released over time.`,
	"StaggerSplit":       `split into num_splits pieces: stagger_first_now released now, the rest one every stagger_gap_ticks.`,
	"Hold":               `keep the payment in Q1 this tick (delay cost accrues).`,
	"Drop":               `remove the payment; it counts as overdue.`,
	"Reprioritize":       `set new_priority (0..10) and keep the payment queued.`,
	"WithdrawFromRtgs":   `take the payment back from Q2.`,
	"ResubmitToRtgs":     `resubmit to Q2 (rtgs_priority: {"value": "HighlyUrgent" | "Urgent" | "Normal"}).`,
	"SetReleaseBudget":   `limit this tick's releases to max_value_to_release cents.`,
	"SetState":           `set register key ({"value": "bank_state_<name>"}) to value.`,
	"AddState":           `add value to register key ({"value": "bank_state_<name>"}).`,
	"NoAction":           `do nothing.`,
	"PostCollateral":     `post amount cents of collateral.`,
	"WithdrawCollateral": `withdraw amount cents of collateral.`,
	"HoldCollateral":     `leave collateral unchanged.`,
}

// actionLine describes one action with its parameters.
func actionLine(name string) string {
	line := cmp.Or(actionRoles[name], "see the engine documentation.")
	k, ok := policy.ActionKindByName(name)
	if !ok {
		return line
	}
	required, optional := policy.ActionParams(k)
	if len(required) > 0 {
		line += " Required: " + strings.Join(required, ", ") + "."
	}
	if len(optional) > 0 {
		line += " Optional: " + strings.Join(optional, ", ") + "."
	}
	return line
}

var treeRoles = map[string]string{
	"payment_tree":                "evaluated every tick for every payment in Q1; decides that payment",
	"bank_tree":                   "evaluated once per tick before payment decisions; bank-wide budget and state registers",
	"strategic_collateral_tree":   "evaluated once per tick at the start; posts or withdraws collateral",
	"end_of_tick_collateral_tree": "evaluated once per tick at the end; posts or withdraws collateral",
}

// rateNotes explains the scenario's cost rates by name.
var rateNotes = map[string]string{
	"liquidity_cost_per_tick_bps":  "basis points per tick on allocated pool liquidity",
	"delay_cost_per_tick_per_cent": "cost per cent of waiting payments per tick",
	"overdraft_bps_per_tick":       "basis points per tick on a negative balance",
	"collateral_cost_per_tick_bps": "basis points per tick on posted collateral",
	"deadline_penalty":             "cents, once per payment that becomes overdue",
	"eod_penalty_per_transaction":  "cents, per payment unsettled past its deadline at end of day",
	"split_friction_cost":          "cents per extra piece when splitting",
	"overdue_delay_multiplier":     "delay cost multiplier for overdue payments",
}

// systemPrompt builds the system prompt: domain (or the override), the cost
// rates, the policy format restricted to the constraints, the answer format
// and the customization text.
func systemPrompt(override string, req optimizer.Request) string {
	var b strings.Builder
	if override != "" {
		b.WriteString(strings.TrimSpace(override))
	} else {
		b.WriteString(domainPrompt)
	}
	b.WriteString("\n\n## Cost rates of this scenario\n")
	writeRates(&b, req.CostRates)
	b.WriteString("\n## Policy format\n")
	writeFormat(&b, req.Constraints)
	b.WriteString(`
## Your answer
Answer with exactly ONE complete policy JSON document (a ` + "```json" + ` fenced block is fine). Keep "version" and
"policy_id", put every parameter you use in "parameters" (within its bounds), give every node a unique "node_id",
use only the fields, parameters and actions listed above, and set trees you do not use to null. Briefly explain your
reasoning before the JSON if you like, but the JSON must be complete and valid.
`)
	if c := strings.TrimSpace(req.Customization); c != "" {
		b.WriteString("\n## Notes for this experiment\n")
		b.WriteString(c)
		b.WriteString("\n")
	}
	return b.String()
}

func writeRates(b *strings.Builder, rates map[string]float64) {
	if len(rates) == 0 {
		b.WriteString("(the scenario's defaults)\n")
		return
	}
	names := make([]string, 0, len(rates))
	for n := range rates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(b, "- %s = %s", n, num(rates[n]))
		if note := rateNotes[n]; note != "" {
			fmt.Fprintf(b, " (%s)", note)
		}
		b.WriteString("\n")
	}
}

func writeFormat(b *strings.Builder, c optimizer.Constraints) {
	b.WriteString(`A policy is a JSON object:
{"version": "1.0", "policy_id": "...", "description": "...",
 "parameters": {"name": number, ...},
 "payment_tree": <node>, "bank_tree": <node or null>,
 "strategic_collateral_tree": <node or null>, "end_of_tick_collateral_tree": <node or null>}
Nodes:
- condition: {"type": "condition", "node_id": "N1", "condition": <expr>, "on_true": <node>, "on_false": <node>}
- action:    {"type": "action", "node_id": "A1", "action": "<Action>", "parameters": {"name": <value>, ...}}
Expressions (<expr>):
- comparison: {"op": "<" | "<=" | ">" | ">=" | "==" | "!=", "left": <value>, "right": <value>}
- {"op": "and" | "or", "conditions": [<expr>, ...]}, {"op": "not", "condition": <expr>}
Values (<value>):
- {"field": "<field name>"}, {"param": "<parameter name>"}, {"value": <number>}
- {"compute": {"op": "+" | "-" | "*" | "/", "left": <value>, "right": <value>}}
- {"compute": {"op": "max" | "min", "values": [<value>, ...]}}
- {"compute": {"op": "ceil" | "floor" | "round" | "abs", "value": <value>}}
- {"compute": {"op": "clamp", "value": <value>, "min": <value>, "max": <value>}}
- {"compute": {"op": "div0", "numerator": <value>, "denominator": <value>, "default": <value>}} (safe division)
`)

	b.WriteString("\nParameters you may set:\n")
	if len(c.Parameters) == 0 {
		b.WriteString("- initial_liquidity_fraction (float, 0.0 to 1.0): fraction of the liquidity pool allocated each day\n")
	}
	for _, p := range c.Parameters {
		fmt.Fprintf(b, "- %s (%s", p.Name, cmp.Or(p.Type, "float"))
		switch {
		case p.Min != nil && p.Max != nil:
			fmt.Fprintf(b, ", %s to %s", num(*p.Min), num(*p.Max))
		case p.Min != nil:
			fmt.Fprintf(b, ", at least %s", num(*p.Min))
		case p.Max != nil:
			fmt.Fprintf(b, ", at most %s", num(*p.Max))
		}
		if len(p.AllowedValues) > 0 {
			vals, _ := json.Marshal(p.AllowedValues)
			fmt.Fprintf(b, ", one of %s", vals)
		}
		b.WriteString(")")
		if d := strings.TrimSpace(p.Description); d != "" {
			fmt.Fprintf(b, ": %s", d)
		}
		b.WriteString("\n")
	}

	fields := c.Fields
	if len(fields) == 0 {
		fields = policy.FieldNames()
	}
	b.WriteString("\nFields you may read (transaction fields only in payment_tree):\n")
	b.WriteString(strings.Join(fields, ", "))
	b.WriteString("\n")

	b.WriteString("\nTrees and the actions allowed in each:\n")
	for t := policy.Tree(0); t < policy.NumTrees; t++ {
		tree := t.String()
		actions, ok := c.Actions[tree]
		if len(c.Actions) == 0 {
			for _, k := range policy.ActionsFor(t) {
				actions = append(actions, k.String())
			}
			ok = true
		}
		if !ok || len(actions) == 0 {
			fmt.Fprintf(b, "- %s: not allowed here; set it to null\n", tree)
			continue
		}
		fmt.Fprintf(b, "- %s (%s):\n", tree, treeRoles[tree])
		for _, a := range actions {
			fmt.Fprintf(b, "  - %s: %s\n", a, actionLine(a))
		}
	}
	b.WriteString(`Action parameters are values too, e.g. "parameters": {"reason": {"value": "low balance"}}; use {} when there are none.
`)
}

// userPrompt carries only the requesting agent's own figures.
func userPrompt(req optimizer.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "You manage bank %s. Iteration %d", req.Agent, req.Iteration)
	if req.Attempt > 1 {
		fmt.Fprintf(&b, ", attempt %d", req.Attempt)
	}
	b.WriteString(".\n\n## Your costs with the current policy\n")
	c := req.Costs
	for _, row := range []struct {
		name  string
		cents int64
	}{
		{"liquidity", c.Liquidity}, {"delay", c.Delay}, {"overdraft", c.Overdraft},
		{"collateral", c.Collateral}, {"deadline penalty", c.DeadlinePenalty},
		{"end-of-day penalty", c.EODPenalty}, {"split friction", c.SplitFriction},
	} {
		fmt.Fprintf(&b, "- %s: %s\n", row.name, money(row.cents))
	}
	fmt.Fprintf(&b, "- TOTAL: %s\n", money(c.Total))

	b.WriteString("\n## Your previous proposals\n")
	if len(req.History) == 0 {
		b.WriteString("(none yet)\n")
	}
	for i, h := range req.History {
		mark := "REJECTED"
		if h.Accepted {
			mark = "ACCEPTED"
		}
		fmt.Fprintf(&b, "- iteration %d: %s; cost %s -> %s", h.Iteration, mark, money(h.OldCost), money(h.NewCost))
		if len(h.Params) > 0 {
			fmt.Fprintf(&b, "; parameters %s", params(h.Params))
		}
		if r := strings.TrimSpace(h.Reason); r != "" {
			fmt.Fprintf(&b, "; %s", r)
		}
		b.WriteString("\n")
		// The full documents of the last few proposals show tree changes
		// too; older ones would only crowd the context.
		if len(req.History)-i <= 3 && len(h.Policy) > 0 {
			fmt.Fprintf(&b, "  policy: %s\n", compact(h.Policy))
		}
	}

	if s := strings.TrimSpace(req.EventSummary); s != "" {
		b.WriteString("\n## What happened to your payments (last evaluation)\n")
		b.WriteString(s)
		b.WriteString("\n")
	}

	b.WriteString("\n## Your current policy\n```json\n")
	b.WriteString(pretty(req.CurrentPolicy))
	b.WriteString("\n```\n")

	if len(req.PreviousErrors) > 0 {
		b.WriteString("\n## Your previous answer was invalid\nFix every one of these problems:\n")
		for _, e := range req.PreviousErrors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	b.WriteString("\nPropose a policy that lowers your total cost. Answer with one complete policy JSON document.\n")
	return b.String()
}

// money shows cents as dollars, keeping the exact cents.
func money(cents int64) string {
	sign := ""
	u := cents
	if cents < 0 {
		sign = "-"
		u = -cents
	}
	return fmt.Sprintf("%s$%d.%02d (%d cents)", sign, u/100, u%100, cents)
}

func params(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + num(m[n])
	}
	return strings.Join(parts, ", ")
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}
