package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInputLimits: inputs that used to panic or exhaust memory each get one
// clear message naming the file and exit 2; validate catches them too.
func TestInputLimits(t *testing.T) {
	b := binaries(t, "runner")
	dir := t.TempDir()
	write := func(name, old, new string) string {
		t.Helper()
		base := "scenarios/exp1.yaml"
		if strings.HasPrefix(old, "rate_per_tick") {
			base = "scenarios/exp2.yaml"
		}
		scn, err := os.ReadFile(testdataPath(t, base))
		if err != nil {
			t.Fatal(err)
		}
		s := string(scn)
		if old != "" {
			if !strings.Contains(s, old) {
				t.Fatalf("exp1 scenario lacks %q", old)
			}
			s = strings.Replace(s, old, new, 1)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// experiment writes an exp1 experiment on scenario path with an edit.
	experiment := func(name, scenarioPath, old, new string) string {
		t.Helper()
		sub := filepath.Join(dir, name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		edits := []string{"scenario: ../../scenarios/exp1.yaml", "scenario: " + scenarioPath}
		if old != "" {
			edits = append(edits, old, new)
		}
		return writeExperiment(t, sub, testdataPath(t, "experiments/persist/no_output.yaml"), edits...)
	}
	good := write("good.yaml", "", "")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"num_days", []string{"simulate", write("days.yaml", "num_days: 1", "num_days: 9223372036854775807")}, "num_days"},
		{"ticks_per_day", []string{"simulate", write("tpd.yaml", "ticks_per_day: 2", "ticks_per_day: 2000000000")}, "ticks_per_day"},
		{"rate_per_tick", []string{"simulate", write("rate.yaml", "rate_per_tick: 2.0", "rate_per_tick: 1e12")}, "rate_per_tick"},
		{"--ticks", []string{"simulate", good, "--ticks", "9223372036854775807"}, "--ticks"},
		{"num_samples", []string{"validate", experiment("samples", good, "num_samples: 50", "num_samples: 2000000000")}, "num_samples"},
		{"scenario /dev/zero", []string{"simulate", "/dev/zero"}, "larger than 16 MiB"},
		{"experiment /dev/zero", []string{"validate", "/dev/zero"}, "larger than 16 MiB"},
		{"experiment on /dev/zero", []string{"validate", experiment("zero", "/dev/zero", "", "")}, "larger than 16 MiB"},
		{"policy /dev/zero", []string{"simulate", good, "--policy", "BANK_A=/dev/zero"}, "larger than 16 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runProc(t, dir, childEnv(), b["runner"], c.args...)
			msg := strings.TrimSpace(r.stderr)
			if r.code != 2 || !strings.Contains(msg, c.want) || strings.Contains(msg, "goroutine") {
				t.Errorf("runner %s: exit %d, %q; want exit 2 and a message about %s", strings.Join(c.args, " "), r.code, msg, c.want)
			}
		})
	}
}
