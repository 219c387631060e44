package main

import (
	"simcash/money"

	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"simcash/scenario"
	"simcash/sim"
)

// simulateCommand runs one simulation of a scenario file.
type simulateCommand struct {
	seed     int64
	seedSet  bool
	sets     []string
	policies []string
	ticks    int
	events   bool
	format   string
	strict   bool
}

func newSimulateCommand() *cobra.Command {
	c := &simulateCommand{}
	cmd := &cobra.Command{
		Use:   "simulate SCENARIO.yaml",
		Short: "Run one simulation and print each bank's costs",
		Long: `Run one simulation of a SimCash scenario file and print each bank's costs.

Costs are integer cents in JSON and dollars in the table. --set changes a policy
parameter of one agent (e.g. --set BANK_A.initial_liquidity_fraction=0.2);
--policy replaces an agent's policy with a JSON policy file. Both apply the
policy as SimCash's experiment runner does: the agent's day-0 pool allocation
follows the policy's initial_liquidity_fraction (0.5 when it has none).`,
		Args: exactArgs(1, "one scenario file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.seedSet = cmd.Flags().Changed("seed")
			return c.Run(cmd.OutOrStdout(), args[0])
		},
	}
	f := cmd.Flags()
	f.Int64Var(&c.seed, "seed", 0, "RNG seed (default: the scenario's rng_seed)")
	f.StringArrayVar(&c.sets, "set", nil, "AGENT.PARAM=VALUE: set a policy parameter (repeatable)")
	f.StringArrayVar(&c.policies, "policy", nil, "AGENT=FILE.json: use this policy for AGENT (repeatable)")
	f.IntVar(&c.ticks, "ticks", 0, "run only N ticks (default: num_days x ticks_per_day)")
	f.BoolVar(&c.events, "events", false, "include the engine's event log in the output")
	f.StringVar(&c.format, "format", "table", "output format: table or json")
	f.BoolVar(&c.strict, "strict", false, "treat unknown keys in the scenario as errors")
	return cmd
}

// Run loads the scenario, applies the overrides, simulates and prints.
func (c *simulateCommand) Run(w io.Writer, path string) error {
	if c.format != "table" && c.format != "json" {
		return userErr("--format must be table or json, not %q", c.format)
	}
	if c.ticks < 0 || c.ticks > scenario.MaxTicks {
		return userErr("--ticks must be from 1 to %d", scenario.MaxTicks)
	}
	cfg, warnings, err := scenario.Load(path, scenario.Options{Strict: c.strict})
	if err != nil {
		return usageError{err}
	}
	for _, w := range warnings {
		slog.Warn(w.Error())
	}
	if err := (scenario.Overrides{Sets: c.sets, Policies: c.policies}).Apply(cfg); err != nil {
		return usageError{err}
	}
	var opts []sim.Option
	if c.seedSet {
		opts = append(opts, sim.WithSeed(uint64(c.seed)))
	}
	if c.ticks > 0 {
		opts = append(opts, sim.WithTicks(c.ticks))
	}
	if c.events {
		opts = append(opts, sim.WithEventLog())
	}
	s, err := sim.New(cfg, opts...)
	if err != nil {
		return usageError{err}
	}
	res := s.Run()
	if c.format == "json" {
		return writeJSON(w, s, res, c.events)
	}
	return writeTable(w, res)
}

type jsonAgent struct {
	TotalCost      int64       `json:"total_cost"`
	Costs          sim.Costs   `json:"costs"`
	DailyCosts     []sim.Costs `json:"daily_costs"`
	Arrivals       int         `json:"arrivals"`
	Settled        int         `json:"settled"`
	FinalBalance   int64       `json:"final_balance"`
	BalanceHistory []int64     `json:"balance_history"`
}

type jsonEvent struct {
	Tick         int32      `json:"tick"`
	Type         string     `json:"type"`
	Agent        string     `json:"agent,omitempty"`
	Counterparty string     `json:"counterparty,omitempty"`
	Tx           *int32     `json:"tx,omitempty"` // nil when no transaction; 0 is one
	Amount       int64      `json:"amount,omitempty"`
	Value        int64      `json:"value,omitempty"`
	Action       string     `json:"action,omitempty"`
	Node         string     `json:"node,omitempty"`
	Detail       string     `json:"detail,omitempty"`
	Costs        *sim.Costs `json:"costs,omitempty"`
}

func writeJSON(w io.Writer, s *sim.Sim, res *sim.Result, events bool) error {
	out := struct {
		Seed         uint64               `json:"seed"`
		Ticks        int                  `json:"ticks"`
		TotalCost    int64                `json:"total_cost"`
		PolicyErrors int                  `json:"policy_errors"`
		Agents       map[string]jsonAgent `json:"agents"`
		Events       []jsonEvent          `json:"events,omitempty"`
	}{Seed: res.Seed, Ticks: res.Ticks, TotalCost: res.TotalCost, PolicyErrors: res.PolicyErrors, Agents: map[string]jsonAgent{}}
	for _, a := range res.Agents {
		h := a.BalanceHistory
		if h == nil {
			h = []int64{}
		}
		out.Agents[a.ID] = jsonAgent{TotalCost: a.Costs.Total(), Costs: a.Costs, DailyCosts: a.DailyCosts, Arrivals: a.Arrivals, Settled: a.Settled, FinalBalance: a.FinalBalance, BalanceHistory: h}
	}
	if events {
		name := func(i int32) string {
			if i < 0 {
				return ""
			}
			return s.AgentID(i)
		}
		for _, e := range s.Events() {
			je := jsonEvent{Tick: e.Tick, Type: e.Kind.String(), Agent: name(e.Agent), Counterparty: name(e.Counterparty), Amount: e.Amount, Value: e.Value, Node: e.Node, Detail: e.Detail, Costs: e.Costs}
			if e.Tx >= 0 {
				je.Tx = &e.Tx
			}
			if e.Kind == sim.EvDecision || e.Kind == sim.EvCollateral || e.Kind == sim.EvBankAction {
				je.Action = e.Action.String()
			}
			out.Events = append(out.Events, je)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

var dollars = money.Dollars

func writeTable(w io.Writer, res *sim.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "agent\tsettled\tliquidity\tdelay\toverdraft\tcollateral\tdeadline\tend of day\tsplit\ttotal\t\n")
	for _, a := range res.Agents {
		c := a.Costs
		rate := "-"
		if a.Arrivals > 0 {
			rate = fmt.Sprintf("%d/%d (%.1f%%)", a.Settled, a.Arrivals, 100*float64(a.Settled)/float64(a.Arrivals))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", a.ID, rate, dollars(c.Liquidity), dollars(c.Delay),
			dollars(c.Overdraft), dollars(c.Collateral), dollars(c.DeadlinePenalty), dollars(c.EODPenalty), dollars(c.SplitFriction), dollars(c.Total()))
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t\t\t\t\t%s\t\n", dollars(res.TotalCost))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "seed %d, %d ticks", res.Seed, res.Ticks)
	if res.PolicyErrors > 0 {
		fmt.Fprintf(w, ", %d policy evaluation errors (see --events)", res.PolicyErrors)
	}
	fmt.Fprintln(w)
	return err
}
