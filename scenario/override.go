package scenario

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"simcash/policy"
	"simcash/sim"
)

// Overrides change agents' policies after loading, the way SimCash's
// experiment runner applies a policy to an agent: the agent gets a JSON
// policy (Sets changes a parameter of its current one, Policies replaces
// it), and its liquidity_allocation_fraction is taken from the policy's
// initial_liquidity_fraction (sim.AgentConfig.UsePolicy).
type Overrides struct {
	// Sets are AGENT.PARAM=VALUE.
	Sets []string
	// Policies are AGENT=FILE.json.
	Policies []string
}

// Apply applies o to cfg. Errors name the offending argument.
func (o Overrides) Apply(cfg *sim.Config) error {
	touched := map[int]bool{}
	for _, s := range o.Policies {
		agent, file, ok := strings.Cut(s, "=")
		if !ok || agent == "" || file == "" {
			return fmt.Errorf("--policy %q: want AGENT=FILE.json", s)
		}
		i, err := AgentIndex(cfg, agent)
		if err != nil {
			return err
		}
		p, err := policy.ParseFile(file)
		if err != nil {
			return fmt.Errorf("--policy %s: %w", agent, err)
		}
		cfg.Agents[i].Policy = p
		touched[i] = true
	}
	for _, s := range o.Sets {
		lhs, val, ok := strings.Cut(s, "=")
		agent, param, ok2 := strings.Cut(lhs, ".")
		if !ok || !ok2 || agent == "" || param == "" {
			return fmt.Errorf("--set %q: want AGENT.PARAM=VALUE", s)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return fmt.Errorf("--set %q: %q is not a number", s, val)
		}
		i, err := AgentIndex(cfg, agent)
		if err != nil {
			return err
		}
		p := cfg.Agents[i].Policy
		if p == nil {
			if p, err = policy.Builtin("Fifo"); err != nil {
				return err
			}
		}
		if err := checkSet(cfg.Agents[i].ID, p, param, v); err != nil {
			return fmt.Errorf("--set %q: %w", s, err)
		}
		p, err = p.WithParams(map[string]float64{param: v})
		if err != nil {
			return fmt.Errorf("--set %q: %w", s, err)
		}
		cfg.Agents[i].Policy = p
		touched[i] = true
	}
	for i := range touched {
		cfg.Agents[i].UsePolicy(cfg.Agents[i].Policy)
	}
	return nil
}

// AgentIndex returns the index in cfg.Agents of the agent with id, or an
// error listing the scenario's agents.
func AgentIndex(cfg *sim.Config, id string) (int, error) {
	ids := make([]string, len(cfg.Agents))
	for i := range cfg.Agents {
		if cfg.Agents[i].ID == id {
			return i, nil
		}
		ids[i] = cfg.Agents[i].ID
	}
	sort.Strings(ids)
	return 0, fmt.Errorf("unknown agent %q (the scenario has %s)", id, strings.Join(ids, ", "))
}

// checkSet refuses a parameter the policy would ignore (a misspelling, say)
// and a liquidity fraction outside [0, 1], instead of simulating something
// other than what was asked for.
func checkSet(agent string, p *policy.Policy, param string, v float64) error {
	if param == "initial_liquidity_fraction" {
		if v < 0 || v > 1 {
			return fmt.Errorf("initial_liquidity_fraction must be between 0 and 1, not %v", v)
		}
		return nil
	}
	if _, ok := p.Param(param); ok {
		return nil
	}
	names := append(slices.Sorted(maps.Keys(p.Params())), "initial_liquidity_fraction")
	slices.Sort(names)
	names = slices.Compact(names)
	return fmt.Errorf("%s's policy has no parameter %q (it has: %s)", agent, param, strings.Join(names, ", "))
}
