// Package oracle runs SimCash's own engine (the simcash-oracle binary that
// ../shared/oracle/build.sh builds from the reference's Rust source) on a
// scenario file and compares its result with our engine's, field by field:
// every cost component, arrivals, settled and the whole balance history of
// every agent.
package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"simcash/scenario"
	"simcash/sim"
)

// EnvBinary names the environment variable that points at simcash-oracle.
const EnvBinary = "SIMCASH_ORACLE"

// Oracle runs SimCash's engine through ../shared/oracle/oracle.sh.
type Oracle struct {
	// Binary is the simcash-oracle executable.
	Binary string
	// Script is oracle.sh (which converts the YAML with SimCash's own
	// Python config layer and pipes it to Binary).
	Script string
}

// Case is one run: a scenario file, a seed and the overrides both engines
// apply.
type Case struct {
	Name     string
	Scenario string
	Seed     *int64
	Sets     []string // AGENT.PARAM=VALUE
	Policies []string // AGENT=FILE.json
}

func (c Case) String() string {
	var b strings.Builder
	b.WriteString(c.Scenario)
	if c.Seed != nil {
		fmt.Fprintf(&b, " --seed %d", *c.Seed)
	}
	for _, s := range c.Sets {
		b.WriteString(" --set " + s)
	}
	for _, p := range c.Policies {
		b.WriteString(" --policy " + p)
	}
	return b.String()
}

// Result is a run's outcome in the shape both engines print
// (`runner simulate --format json`).
type Result struct {
	Seed      uint64                 `json:"seed"`
	Ticks     int                    `json:"ticks"`
	TotalCost int64                  `json:"total_cost"`
	Agents    map[string]AgentResult `json:"agents"`
}

// AgentResult is one agent's outcome.
type AgentResult struct {
	Costs          sim.Costs   `json:"costs"`
	DailyCosts     []sim.Costs `json:"daily_costs"`
	Arrivals       int         `json:"arrivals"`
	Settled        int         `json:"settled"`
	BalanceHistory []int64     `json:"balance_history"`
}

// RefusedError is SimCash's engine refusing a case (a config it rejects or
// a run-time failure); Message is what it said.
type RefusedError struct{ Message string }

func (e *RefusedError) Error() string { return "SimCash refuses: " + e.Message }

// Run runs c through SimCash's engine.
func (o *Oracle) Run(ctx context.Context, c Case) (*Result, error) {
	args := []string{o.Script, c.Scenario}
	if c.Seed != nil {
		args = append(args, "--seed", strconv.FormatInt(*c.Seed, 10))
	}
	for _, s := range c.Sets {
		args = append(args, "--set", s)
	}
	for _, p := range c.Policies {
		args = append(args, "--policy", p)
	}
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Env = append(os.Environ(), "ORACLE="+o.Binary)
	// The script pipes python into the engine: end the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &RefusedError{Message: refusal(stderr.String())}
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("oracle output: %w", err)
	}
	return &r, nil
}

// Ours runs c through our engine.
func Ours(c Case) (*Result, error) {
	// A scenario copied elsewhere (a temporary folder) still finds the
	// reference policies by base name.
	var dirs []string
	if shared := SharedDir("."); shared != "" {
		dirs = append(dirs, filepath.Join(shared, "simcash", "policies"))
	}
	cfg, _, err := scenario.Load(c.Scenario, scenario.Options{PolicyDirs: dirs})
	if err != nil {
		return nil, err
	}
	if err := (scenario.Overrides{Sets: c.Sets, Policies: c.Policies}).Apply(cfg); err != nil {
		return nil, err
	}
	var opts []sim.Option
	if c.Seed != nil {
		opts = append(opts, sim.WithSeed(uint64(*c.Seed)))
	}
	s, err := sim.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	return FromSim(s.Run()), nil
}

// FromSim converts our engine's result.
func FromSim(res *sim.Result) *Result {
	r := &Result{Seed: res.Seed, Ticks: res.Ticks, TotalCost: res.TotalCost, Agents: map[string]AgentResult{}}
	for _, a := range res.Agents {
		r.Agents[a.ID] = AgentResult{Costs: a.Costs, DailyCosts: a.DailyCosts, Arrivals: a.Arrivals, Settled: a.Settled, BalanceHistory: a.BalanceHistory}
	}
	return r
}

// Diff is one field where the engines part.
type Diff struct {
	Agent string
	Field string
	// Tick is the first tick whose balance differs, -1 for totals.
	Tick      int
	Want, Got int64 // SimCash's, ours
	Day       int   // daily costs: the first day that differs; -1 otherwise
}

func (d Diff) String() string {
	switch {
	case d.Tick >= 0:
		return fmt.Sprintf("%s balance at tick %d: SimCash %d, ours %d", d.Agent, d.Tick, d.Want, d.Got)
	case d.Day >= 0:
		return fmt.Sprintf("%s %s: SimCash %d, ours %d (first differs on day %d)", d.Agent, d.Field, d.Want, d.Got, d.Day)
	default:
		return fmt.Sprintf("%s %s: SimCash %d, ours %d", d.Agent, d.Field, d.Want, d.Got)
	}
}

// Compare lists where got (ours) parts from want (SimCash's): per agent,
// the first tick whose balance differs, every cost component, arrivals and
// settled. The first entry is the earliest divergence in the balances when
// there is one.
func Compare(want, got *Result) []Diff {
	var diffs []Diff
	ids := make([]string, 0, len(want.Agents))
	for id := range want.Agents {
		ids = append(ids, id)
	}
	for id := range got.Agents {
		if _, ok := want.Agents[id]; !ok {
			diffs = append(diffs, Diff{Agent: id, Field: "agent (not in SimCash's result)", Tick: -1, Day: -1})
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		w := want.Agents[id]
		g, ok := got.Agents[id]
		if !ok {
			diffs = append(diffs, Diff{Agent: id, Field: "agent (missing from ours)", Tick: -1, Day: -1})
			continue
		}
		n := max(len(w.BalanceHistory), len(g.BalanceHistory))
		for t := 0; t < n; t++ {
			wb, gb := at(w.BalanceHistory, t), at(g.BalanceHistory, t)
			if wb != gb {
				diffs = append(diffs, Diff{Agent: id, Field: "balance", Tick: t, Want: wb, Got: gb, Day: -1})
				break
			}
		}
		for _, f := range costFields {
			wv, gv := f.get(w.Costs), f.get(g.Costs)
			if wv == gv {
				continue
			}
			d := Diff{Agent: id, Field: f.name, Tick: -1, Want: wv, Got: gv, Day: -1}
			for day := 0; day < max(len(w.DailyCosts), len(g.DailyCosts)); day++ {
				var wd, gd int64
				if day < len(w.DailyCosts) {
					wd = f.get(w.DailyCosts[day])
				}
				if day < len(g.DailyCosts) {
					gd = f.get(g.DailyCosts[day])
				}
				if wd != gd {
					d.Day = day
					break
				}
			}
			diffs = append(diffs, d)
		}
		if w.Arrivals != g.Arrivals {
			diffs = append(diffs, Diff{Agent: id, Field: "arrivals", Tick: -1, Day: -1, Want: int64(w.Arrivals), Got: int64(g.Arrivals)})
		}
		if w.Settled != g.Settled {
			diffs = append(diffs, Diff{Agent: id, Field: "settled", Tick: -1, Day: -1, Want: int64(w.Settled), Got: int64(g.Settled)})
		}
	}
	slices.SortStableFunc(diffs, func(a, b Diff) int {
		ta, tb := a.Tick, b.Tick
		if ta < 0 {
			ta = 1 << 30
		}
		if tb < 0 {
			tb = 1 << 30
		}
		return ta - tb
	})
	return diffs
}

func at(h []int64, t int) int64 {
	if t < len(h) {
		return h[t]
	}
	return -1 << 62
}

var costFields = []struct {
	name string
	get  func(sim.Costs) int64
}{
	{"liquidity", func(c sim.Costs) int64 { return c.Liquidity }},
	{"delay", func(c sim.Costs) int64 { return c.Delay }},
	{"overdraft", func(c sim.Costs) int64 { return c.Overdraft }},
	{"collateral", func(c sim.Costs) int64 { return c.Collateral }},
	{"deadline_penalty", func(c sim.Costs) int64 { return c.DeadlinePenalty }},
	{"eod_penalty", func(c sim.Costs) int64 { return c.EODPenalty }},
	{"split_friction", func(c sim.Costs) int64 { return c.SplitFriction }},
}

// Find locates the oracle: SIMCASH_ORACLE names the binary, and oracle.sh
// is searched in ../shared/oracle from dir upwards. It returns nil and the
// reason when either is missing.
func Find(dir string) (*Oracle, string) {
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		return nil, EnvBinary + " is not set (build SimCash's engine with ../shared/oracle/build.sh and set it to the binary it prints)"
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Sprintf("%s=%s: %v", EnvBinary, bin, err)
	}
	shared := SharedDir(dir)
	if shared == "" {
		return nil, "../shared (with oracle/oracle.sh) not found beside the project"
	}
	script := filepath.Join(shared, "oracle", "oracle.sh")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Sprintf("%s: %v", script, err)
	}
	return &Oracle{Binary: bin, Script: script}, ""
}

// SharedDir returns the shared/ folder beside the project that holds dir,
// or "" when there is none.
func SharedDir(dir string) string {
	d, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		cand := filepath.Join(d, "..", "shared")
		if st, err := os.Stat(filepath.Join(cand, "oracle")); err == nil && st.IsDir() {
			c, _ := filepath.Abs(cand)
			return c
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// IsRefused reports whether err is SimCash refusing the case.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// refusal picks the lines of the oracle's stderr that say why it failed:
// SimCash's schema error, the engine's panic message or the driver's own
// error line.
func refusal(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i, l := range lines {
		switch {
		case strings.Contains(l, "ValidationError") && i+2 < len(lines):
			return "schema: " + strings.TrimSpace(lines[i+1]) + ": " + strings.TrimSpace(lines[i+2])
		case strings.Contains(l, "panicked at") && i+1 < len(lines):
			return "panic: " + strings.TrimSpace(lines[i+1])
		case strings.HasPrefix(l, "simcash-oracle:") && !strings.Contains(stderr, "Traceback"):
			return strings.TrimPrefix(l, "simcash-oracle: ")
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := lines[i]; !strings.HasPrefix(l, "simcash-oracle:") && !strings.HasPrefix(l, " ") {
			return "config: " + l
		}
	}
	return lines[len(lines)-1]
}

// Timing is SimCash's engine's in-process time for one whole run
// (simcash-oracle --repeat): Orchestrator::new plus every tick.
type Timing struct {
	Repeat int     `json:"repeat"`
	MeanUS float64 `json:"mean_us"`
	MinUS  float64 `json:"min_us"`
}

// Time runs scenario repeat times inside SimCash's engine, after one
// warm-up run, and returns its timing. The YAML is converted once by
// SimCash's Python layer, outside the timed runs.
func (o *Oracle) Time(ctx context.Context, scenario string, repeat int) (*Timing, error) {
	convert := filepath.Join(filepath.Dir(o.Script), "convert.py")
	cfg, err := exec.CommandContext(ctx, "python3", convert, scenario).Output()
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", scenario, err)
	}
	bin, err := filepath.EvalSymlinks(o.Binary)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(filepath.Dir(bin), "..", "..", "simcash")
	cmd := exec.CommandContext(ctx, o.Binary, "-", "--repeat", strconv.Itoa(repeat), "--simcash-root", root)
	cmd.Stdin = bytes.NewReader(cfg)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("simcash-oracle --repeat: %w", err)
	}
	var t Timing
	if err := json.Unmarshal(out, &t); err != nil {
		return nil, fmt.Errorf("simcash-oracle --repeat output %q: %w", out, err)
	}
	return &t, nil
}
