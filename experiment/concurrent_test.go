package experiment

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"simcash/llm"
	"simcash/llm/llmtest"
	"simcash/optimizer/llmopt"
)

var iterationRE = regexp.MustCompile(`You manage bank (\S+?)\.? Iteration (\d+)`)

// promptModel answers each request from its prompt alone, after delay, so
// runs that ask in different orders get the same answers.
func promptModel(t testing.TB, delay time.Duration) *llmtest.Server {
	return promptModelSeen(t, delay, nil)
}

// promptModelSeen is promptModel calling seen at each request's arrival.
func promptModelSeen(t testing.TB, delay time.Duration, seen func()) *llmtest.Server {
	return llmtest.NewFunc(t, llmtest.OpenAIPath, func(r llmtest.Request) llmtest.Reply {
		if seen != nil {
			seen()
		}
		h := fnv.New32a()
		h.Write(r.Body)
		f := float64(h.Sum32()%7) / 10
		text := fmt.Sprintf("```json\n"+`{"version":"2.0","policy_id":"p","parameters":{"initial_liquidity_fraction":%g},`+
			`"payment_tree":{"type":"action","node_id":"release","action":"Release","parameters":{}},`+
			`"bank_tree":{"type":"action","node_id":"bank_noop","action":"NoAction","parameters":{}}}`+"\n```", f)
		if m := iterationRE.FindSubmatch(r.Body); m == nil {
			text = "no prompt I know"
		}
		rep := llmtest.OpenAI(text, 500, 40)
		rep.Delay = delay
		return rep
	})
}

// llmRunner is exp1 optimized by the LLM optimizer against srv, asking
// calls agents at a time.
func llmRunner(t testing.TB, srv *llmtest.Server, iterations, calls int) *Runner {
	r := loadExperiment(t, filepath.Join(repoRoot(t), "testdata/experiments/exp1.yaml"))
	if err := r.Config.ApplyOverrides(Overrides{Model: "openai:test-model", MaxIterations: iterations}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	client, err := llm.New(llm.Config{Provider: "openai", Model: "test-model", BaseURL: srv.URL + "/v1", APIKey: "k",
		Timeout: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.Optimizer = llmopt.New(client, llmopt.Config{Model: r.Config.LLM.Model, Logger: quiet})
	r.Logger, r.ModelCalls, r.ID = quiet, calls, "run-1"
	return r
}

// TestConcurrentProposalsSameRecords: asking both agents at once stores the
// same records as asking them in turn, apart from times and latencies.
func TestConcurrentProposalsSameRecords(t *testing.T) {
	// The model answers after 200 ms; two requests arriving within 100 ms
	// of each other were in flight together.
	var mu sync.Mutex
	var arrivals []time.Time
	srv := promptModelSeen(t, 200*time.Millisecond, func() {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	})
	var runs [2]map[string]string
	for k, calls := range []int{1, 2} {
		mu.Lock()
		arrivals = nil
		mu.Unlock()
		r := llmRunner(t, srv, 3, calls)
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		together := 0
		for i := 1; i < len(arrivals); i++ {
			if arrivals[i].Sub(arrivals[i-1]) < 100*time.Millisecond {
				together++
			}
		}
		mu.Unlock()
		if calls == 1 && together > 0 || calls == 2 && together == 0 {
			t.Errorf("ModelCalls %d: %d requests arrived while another was in flight", calls, together)
		}
		recs := r.Sink.(*Memory).Records
		runs[k] = keyed(t, recs)
		for id, rec := range runs[k] { // latencies differ by nature
			runs[k][id] = latencyRE.ReplaceAllString(rec, `"latency_seconds":0`)
		}
	}
	if len(runs[0]) < 10 || !reflect.DeepEqual(runs[0], runs[1]) {
		for id, v := range runs[0] {
			if runs[1][id] != v {
				t.Fatalf("%s differs:\nsequential %s\nconcurrent %s", id, v, runs[1][id])
			}
		}
		t.Fatalf("%d and %d records", len(runs[0]), len(runs[1]))
	}
}

var latencyRE = regexp.MustCompile(`"latency_seconds":[0-9.e-]+`)

// BenchmarkConcurrentProposals runs 5 iterations of a 2-agent LLM
// experiment against a model answering after 200 ms, asking the agents one
// at a time and both at once.
func BenchmarkConcurrentProposals(b *testing.B) {
	srv := promptModel(b, 200*time.Millisecond)
	var secs [2]float64
	for b.Loop() {
		for k, calls := range []int{1, 2} {
			r := llmRunner(b, srv, 5, calls)
			start := time.Now()
			if _, err := r.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			secs[k] += time.Since(start).Seconds()
		}
	}
	n := float64(b.N)
	b.ReportMetric(secs[0]/n, "sequential-s")
	b.ReportMetric(secs[1]/n, "concurrent-s")
	b.ReportMetric(secs[1]/secs[0], "ratio")
}
