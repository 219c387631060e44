package oracle_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"simcash/oracle"
	"simcash/scenariogen"
)

// caseTimeout bounds one oracle run: SimCash's engine needs minutes on
// some busy scenarios. A case it cannot finish in time is logged and
// skipped, not failed.
const caseTimeout = 45 * time.Second

// outcome is one case's verdict.
type outcome struct {
	c       oracle.Case
	diffs   []oracle.Diff
	refused string // SimCash's message when it refused
	slow    bool   // SimCash's engine did not finish within caseTimeout
	ours    string // our behaviour on a refused case
	err     error
}

// runCases runs every case through both engines, in parallel, and reports
// the differences. Cases SimCash refuses are listed apart with ours.
func runCases(t *testing.T, o *oracle.Oracle, cases []oracle.Case) []outcome {
	t.Helper()
	if f := os.Getenv("ORACLE_CASES"); f != "" {
		re := regexp.MustCompile(f)
		cases = slices.DeleteFunc(cases, func(c oracle.Case) bool { return !re.MatchString(c.Name) })
	}
	out := make([]outcome, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(2, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = runCase(t.Context(), o, cases[i])
			}
		}()
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()

	var failed, refused, slow int
	for _, r := range out {
		switch {
		case r.slow:
			slow++
			t.Logf("skipped: SimCash's engine took over %v on %s (%s)", caseTimeout, r.c.Name, r.c)
		case r.err != nil:
			failed++
			t.Errorf("%s: %v", r.c.Name, r.err)
		case r.refused != "":
			refused++
			t.Logf("refused by SimCash: %s (%s): %s; ours: %s", r.c.Name, r.c, r.refused, r.ours)
		case len(r.diffs) > 0:
			failed++
			var b strings.Builder
			for i, d := range r.diffs {
				if i == 6 {
					fmt.Fprintf(&b, "\n    ... %d more", len(r.diffs)-i)
					break
				}
				b.WriteString("\n    " + d.String())
			}
			t.Errorf("%s differs (%s):%s", r.c.Name, r.c, b.String())
		}
	}
	t.Logf("%d cases: %d agree, %d differ, %d refused by SimCash, %d skipped (SimCash too slow)", len(cases), len(cases)-failed-refused-slow, failed, refused, slow)
	return out
}

func runCase(ctx context.Context, o *oracle.Oracle, c oracle.Case) outcome {
	r := outcome{c: c}
	ctx, cancel := context.WithTimeout(ctx, caseTimeout)
	defer cancel()
	want, err := o.Run(ctx, c)
	if err != nil && ctx.Err() != nil {
		r.slow = true
		return r
	}
	if err != nil {
		if oracle.IsRefused(err) {
			r.refused = err.(*oracle.RefusedError).Message
			if _, oerr := oracle.Ours(c); oerr != nil {
				r.ours = "error: " + oerr.Error()
			} else {
				r.ours = "runs"
			}
			return r
		}
		r.err = err
		return r
	}
	got, err := oracle.Ours(c)
	if err != nil {
		r.err = fmt.Errorf("ours fails where SimCash runs: %w", err)
		return r
	}
	r.diffs = oracle.Compare(want, got)
	return r
}

func needOracle(t *testing.T) (*oracle.Oracle, string) {
	t.Helper()
	o, why := oracle.Find(".")
	if o == nil {
		t.Skip("differential test skipped: " + why)
	}
	return o, oracle.SharedDir(".")
}

func seeds(n int) []*int64 {
	out := make([]*int64, n)
	for i := range out {
		s := int64(i + 1)
		out[i] = &s
	}
	return out
}

// TestDifferentialReferenceScenarios runs every scenario file in
// ../shared/simcash at 5 seeds.
func TestDifferentialReferenceScenarios(t *testing.T) {
	o, shared := needOracle(t)
	var files []string
	for _, dir := range []string{"castro/configs", "examples"} {
		m, _ := filepath.Glob(filepath.Join(shared, "simcash", dir, "*.yaml"))
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("no scenarios in ../shared/simcash")
	}
	var cases []oracle.Case
	for _, f := range files {
		f = shortened(t, f)
		for _, s := range seeds(5) {
			cases = append(cases, oracle.Case{Name: fmt.Sprintf("%s/seed%d", filepath.Base(f), *s), Scenario: f, Seed: s})
		}
	}
	runCases(t, o, cases)
}

// TestDifferentialCastroFractions runs the Castro configs at 8 pairs of
// initial liquidity fractions and 5 seeds.
func TestDifferentialCastroFractions(t *testing.T) {
	o, shared := needOracle(t)
	pairs := [][2]string{{"0", "0"}, {"0", "0.2"}, {"0.2", "0"}, {"0.1", "0.1"}, {"0.25", "0.5"}, {"0.5", "0.5"}, {"1", "0.05"}, {"0.75", "1"}}
	var cases []oracle.Case
	for _, name := range []string{"exp1_2period.yaml", "exp2_12period.yaml", "exp3_joint.yaml"} {
		f := filepath.Join(shared, "simcash", "castro", "configs", name)
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s: %v", f, err)
		}
		for _, p := range pairs {
			for _, s := range seeds(5) {
				cases = append(cases, oracle.Case{
					Name:     fmt.Sprintf("%s/A=%s,B=%s/seed%d", name, p[0], p[1], *s),
					Scenario: f, Seed: s,
					Sets: []string{"BANK_A.initial_liquidity_fraction=" + p[0], "BANK_B.initial_liquidity_fraction=" + p[1]},
				})
			}
		}
	}
	runCases(t, o, cases)
}

// TestDifferentialPolicies gives every policy file in
// ../shared/simcash/policies to a bank of a 3-bank LSM scenario.
func TestDifferentialPolicies(t *testing.T) {
	o, shared := needOracle(t)
	pols, _ := filepath.Glob(filepath.Join(shared, "simcash", "policies", "*.json"))
	if len(pols) == 0 {
		t.Skip("no policies in ../shared/simcash/policies")
	}
	slices.Sort(pols)
	scen := filepath.Join("testdata", "lsm3.yaml")
	var cases []oracle.Case
	for _, p := range pols {
		for _, s := range seeds(5) {
			cases = append(cases, oracle.Case{
				Name:     fmt.Sprintf("%s/seed%d", filepath.Base(p), *s),
				Scenario: scen, Seed: s,
				Policies: []string{"BANK_B=" + p},
			})
		}
	}
	runCases(t, o, cases)
}

// TestDifferentialGenerated runs generated scenarios with fixed seeds
// (ORACLE_GENERATED sets how many; 600 by default, so that more than 500
// are compared after those SimCash refuses: about one in six, mostly
// collateral posts beyond capacity and splits into parts of zero).
func TestDifferentialGenerated(t *testing.T) {
	o, shared := needOracle(t)
	n := 600
	if v := os.Getenv("ORACLE_GENERATED"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("ORACLE_GENERATED=%q: %v", v, err)
		}
	}
	pols, _ := filepath.Glob(filepath.Join(shared, "simcash", "policies", "*.json"))
	slices.Sort(pols)
	dir := t.TempDir()
	var cases []oracle.Case
	for seed := 1; seed <= n; seed++ {
		f := filepath.Join(dir, fmt.Sprintf("gen%04d.yaml", seed))
		if err := os.WriteFile(f, scenariogen.Generate(uint64(seed), scenariogen.Options{PolicyFiles: pols}), 0o644); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, oracle.Case{Name: fmt.Sprintf("gen%04d", seed), Scenario: f})
	}
	runCases(t, o, cases)
}

var numDays = regexp.MustCompile(`(?m)^(\s*num_days:\s*)(\d+)`)
var ticksPerDay = regexp.MustCompile(`(?m)^\s*ticks_per_day:\s*(\d+)`)

// maxOracleTicks bounds a reference scenario's run: SimCash's engine takes
// more than ten minutes on the 25-day, 100-tick examples.
const maxOracleTicks = 400

// shortened returns path, or a copy in a temporary folder with fewer days
// when the run is longer than maxOracleTicks.
func shortened(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tm, dm := ticksPerDay.FindSubmatch(data), numDays.FindSubmatch(data)
	if tm == nil || dm == nil {
		return path
	}
	tpd, _ := strconv.Atoi(string(tm[1]))
	days, _ := strconv.Atoi(string(dm[2]))
	if tpd*days <= maxOracleTicks {
		return path
	}
	keep := max(1, maxOracleTicks/tpd)
	t.Logf("%s: %d days of %d ticks cut to %d days for the oracle's sake", filepath.Base(path), days, tpd, keep)
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	data = numDays.ReplaceAll(data, []byte("${1}"+strconv.Itoa(keep)))
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
