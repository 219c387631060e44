package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"simcash/bus"
)

// TestFirstHourFriction walks through what a new user does first, with the
// real binaries in a fresh working directory: each case is an item of
// issue 8's friction list.
func TestFirstHourFriction(t *testing.T) {
	bin := binaries(t, "runner", "results")
	env := slices.DeleteFunc(childEnv(), func(kv string) bool { // no API keys, no SIMCASH_*
		name, _, _ := strings.Cut(kv, "=")
		return strings.HasSuffix(name, "_API_KEY")
	})
	exp1 := testdataPath(t, "experiments/exp1.yaml")

	t.Run("validate and dry-run need no API key", func(t *testing.T) {
		dir := t.TempDir()
		scn := testdataPath(t, "scenarios/exp1.yaml")
		openai := writeExperiment(t, dir, exp1, "model: builtin:search", "model: openai:gpt-4o",
			"scenario: ../scenarios/exp1.yaml", "scenario: "+scn)
		files := []string{openai}
		if ref, _ := filepath.Glob(filepath.Join(repoRoot(t), "..", "shared", "simcash", "castro", "experiments", "*.yaml")); len(ref) > 0 {
			files = append(files, ref...)
		} else {
			t.Log("../shared/simcash absent: checking our own openai experiment only")
		}
		for _, f := range files {
			r := runProc(t, dir, env, bin["runner"], "validate", f)
			if r.code != 0 || !strings.Contains(r.stdout, ": ok") || !strings.Contains(r.stdout, "OPENAI_API_KEY") {
				t.Errorf("validate %s: exit %d, stdout %q, stderr %q; want ok and a note naming OPENAI_API_KEY", f, r.code, r.stdout, r.stderr)
			}
			r = runProc(t, dir, env, bin["runner"], "run", "--dry-run", f)
			if r.code != 0 || !strings.Contains(r.stdout, "configuration valid") || !strings.Contains(r.stdout, "OPENAI_API_KEY") {
				t.Errorf("run --dry-run %s: exit %d, stdout %q, stderr %q", f, r.code, r.stdout, r.stderr)
			}
		}
	})

	t.Run("simulate --set refuses what it would ignore", func(t *testing.T) {
		scn := testdataPath(t, "scenarios/exp1.yaml")
		for set, want := range map[string]string{
			"BANK_A.initial_liquidity_fractoin=0.2":  `no parameter "initial_liquidity_fractoin"`,
			"BANK_A.initial_liquidity_fraction=3":    "between 0 and 1",
			"BANK_A.initial_liquidity_fraction=-0.1": "between 0 and 1",
		} {
			r := runProc(t, t.TempDir(), env, bin["runner"], "simulate", scn, "--set", set)
			if r.code != 2 || r.stdout != "" || len(nonEmptyLines(r.stderr)) != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("--set %s: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", set, r.code, r.stdout, r.stderr, want)
			}
		}
		mustProc(t, t.TempDir(), env, bin["runner"], "simulate", scn, "--set", "BANK_A.initial_liquidity_fraction=1")
	})

	t.Run("simulate --events names transaction 0", func(t *testing.T) {
		r := mustProc(t, t.TempDir(), env, bin["runner"], "simulate", testdataPath(t, "scenarios/exp1.yaml"), "--events", "--format", "json")
		var out struct {
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatal(err)
		}
		var arrivals, zero int
		for _, e := range out.Events {
			if e["type"] != "arrival" {
				continue
			}
			arrivals++
			tx, ok := e["tx"]
			if !ok {
				t.Errorf("arrival without tx: %v", e)
			}
			if tx == float64(0) {
				zero++
			}
		}
		if arrivals == 0 || zero != 1 {
			t.Errorf("%d arrivals, %d of transaction 0; want one", arrivals, zero)
		}
	})

	t.Run("run then results with no flags, one log voice", func(t *testing.T) {
		dir := t.TempDir()
		run := mustProc(t, dir, env, bin["runner"], "run", exp1, "--max-iterations", "2")
		progress := regexp.MustCompile(`^(running |iteration \d+/\d+|  BANK_)`)
		for _, l := range nonEmptyLines(run.stderr) {
			if !progress.MatchString(l) && !strings.HasPrefix(l, "runner: ") {
				t.Errorf("stderr line in another voice: %q", l)
			}
			if strings.Contains(l, "durable") || strings.Contains(l, "INFO") {
				t.Errorf("internal log line among the progress: %q", l)
			}
		}
		list := mustProc(t, dir, env, bin["results"], "list", "--format", "csv")
		rows := nonEmptyLines(list.stdout)
		if len(rows) != 2 {
			t.Fatalf("results list without --db after runner run: %q", list.stdout)
		}
		id := strings.Split(rows[1], ",")[0]

		ev := mustProc(t, dir, env, bin["results"], "events", id)
		cutValue := regexp.MustCompile(`"[a-z_]+":(\.\.\.|…)`)
		sc := bufio.NewScanner(strings.NewReader(ev.stdout))
		for sc.Scan() {
			if cutValue.MatchString(sc.Text()) {
				t.Errorf("data cut where a value starts: %q", sc.Text())
			}
		}
		full := mustProc(t, dir, env, bin["results"], "events", id, "--type", "experiment_start", "--full")
		if !strings.Contains(full.stdout, `"name":"exp1"`) {
			t.Errorf("--full does not show the whole data:\n%s", full.stdout)
		}
		bogus := runProc(t, dir, env, bin["results"], "events", id, "--type", "bogus")
		if bogus.code != 2 || !strings.Contains(bogus.stderr, "policy_accepted") {
			t.Errorf("events --type bogus: exit %d, stderr %q; want 2 and the types it has", bogus.code, bogus.stderr)
		}
	})
}

// TestReadmeExamplesNeedNoShared checks that the README's commands run on a
// fresh clone: none names ../shared, and every testdata file exists.
func TestReadmeExamplesNeedNoShared(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inBlock, n := false, 0
	path := regexp.MustCompile(`testdata/[\w./-]+\.(yaml|json)`)
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock || !strings.Contains(line, "go run ./cmd/") {
			continue
		}
		n++
		if strings.Contains(line, "../shared") {
			t.Errorf("README.md:%d uses ../shared, which a fresh clone lacks: %s", i+1, line)
		}
		for _, p := range path.FindAllString(line, -1) {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("README.md:%d names %s: %v", i+1, p, err)
			}
		}
	}
	if n < 10 {
		t.Errorf("found %d example commands in README.md; the extraction is broken", n)
	}
}

// TestResultsDuringEmbeddedRun reads a database while `runner run` holds
// it with its in-process persister (issue 8, break 9): directly and
// through a symbolic link to it.
func TestResultsDuringEmbeddedRun(t *testing.T) {
	bin := binaries(t, "runner", "results")
	dir := t.TempDir()
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	llm := newFakeLLM(t, func(int) (string, int, int) {
		<-release // the run stays in its first iteration until the test has read
		return policyAnswer(0.3), 10, 5
	})
	exp := llmExperiment(t, dir, llm.srv.URL+"/v1/")
	db := filepath.Join(dir, "all.db")
	cmd := exec.Command(bin["runner"], "run", exp, "--db", db, "--max-iterations", "1", "--quiet")
	cmd.Dir, cmd.Env = dir, childEnv("OPENAI_API_KEY=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(bus.InfoFile(db)); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("runner exited before the test read: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no persister info file after a minute; stderr:\n%s", stderr.String())
		}
	}
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(db, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{db, link} {
		// The info file is written at start; the run's first record is
		// committed a moment later.
		for {
			r := mustProc(t, dir, childEnv(), bin["results"], "list", "--db", path, "--format", "csv")
			rows := nonEmptyLines(r.stdout)
			if len(rows) == 2 && strings.Contains(rows[1], "running") {
				break
			}
			if len(rows) > 2 || time.Now().After(deadline) {
				t.Fatalf("results list --db %s during the run: %q, want the run as running", path, r.stdout)
			}
			time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
		}
	}
	free()
	if err := <-exited; err != nil {
		t.Fatalf("runner: %v\n%s", err, stderr.String())
	}
}

// TestRunnerFailsOnFullStream: when the stream is at its byte limit
// (issue 8, break 3), a runner publishing to it exits non-zero within its
// store timeout, with the server's reason, instead of hanging.
func TestRunnerFailsOnFullStream(t *testing.T) {
	b := binaries(t, "persister", "runner")
	dir := t.TempDir()
	p := startPersister(t, b["persister"], filepath.Join(dir, "all.db"), "SIMCASH_STREAM_MAX_BYTES=6000")
	start := time.Now()
	// The runner's own (default) limits must not undo the persister's.
	r := runProc(t, dir, childEnv("SIMCASH_NATS_URL="+p.url, "SIMCASH_PUBLISH_STORE_TIMEOUT=3s"),
		b["runner"], "run", testdataPath(t, "experiments/exp1.yaml"), "--quiet")
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "maximum bytes exceeded") || !strings.Contains(r.stderr, "cannot store") {
		t.Fatalf("runner on a full stream: exit %d, stderr:\n%s\nwant exit 1 with the server's reason", r.code, r.stderr)
	}
	if took > 90*time.Second {
		t.Errorf("the runner took %v to give up, want about its 3s store timeout", took)
	}
	t.Logf("runner gave up after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
}
