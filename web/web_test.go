package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"simcash/schema"
	"simcash/store"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`

// testServer serves a database with a completed run, a running run and an
// experiment whose name and agent are hostile markup.
func testServer(t testing.TB, opts ...Option) (*httptest.Server, string) {
	return testServerLost(t, 0, opts...)
}

// testServerLost is testServer with the store's lost-after time (0: the
// default, a minute, which makes the fixtures' running run lost).
func testServerLost(t testing.TB, lostAfter time.Duration, opts ...Option) (*httptest.Server, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "web.db")
	writeRecords(t, db, testRecords())
	open := func(ctx context.Context) (store.Reader, func(), error) {
		s, err := store.OpenReadOnly(ctx, db, store.WithLostAfter(lostAfter))
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
	srv := httptest.NewServer(New(open, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...))
	t.Cleanup(srv.Close)
	return srv, db
}

func writeRecords(t testing.TB, db string, rs []schema.Record) {
	t.Helper()
	s, err := store.Open(context.Background(), db, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for len(rs) > 0 {
		n := min(len(rs), 5000)
		var msgs []store.Message
		for _, r := range rs[:n] {
			b, err := schema.Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, store.Message{Subject: schema.Subject(r), Data: b})
		}
		if res, err := s.WriteBatch(context.Background(), msgs); err != nil || res.DeadLetters > 0 {
			t.Fatalf("write: %v, %+v", err, res)
		}
		rs = rs[n:]
	}
}

// run returns the records of one run with iters iterations of two agents.
func run(id, name string, seed int64, iters int, done bool, start time.Time) []schema.Record {
	pol := func(f float64) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"version":"2.0","policy_id":"p","parameters":{"initial_liquidity_fraction":%g},"payment_tree":{"type":"action","node_id":"release","action":"Release"}}`, f))
	}
	cfg := fmt.Sprintf(`{"name":%q,"master_seed":%d,"optimized_agents":["BANK_A","BANK_B"],"evaluation":{"mode":"bootstrap"},"convergence":{"max_iterations":%d}}`, name, seed, iters)
	rs := []schema.Record{&schema.ExperimentStarted{ExpID: id, Name: name, Type: "generic", Config: json.RawMessage(cfg), MasterSeed: seed,
		Scenario: "s.yaml", Model: "builtin:search", StartedAt: start, ProgramVersion: "v", Host: "h", ConfigHash: "c"}}
	f := 0.5
	for i := 1; i <= iters; i++ {
		both := fmt.Sprintf(`{"BANK_A":%s,"BANK_B":%s}`, pol(f), pol(0.5))
		rs = append(rs, &schema.Iteration{ExpID: id, Iteration: i, TotalCost: int64(100000 - 1000*i), Policies: json.RawMessage(both),
			AgentCosts:      map[string]int64{"BANK_A": int64(50000 - 1000*i), "BANK_B": 50000},
			AcceptedChanges: map[string]bool{"BANK_A": true, "BANK_B": false}, Timestamp: start})
		for _, a := range []string{"BANK_A", "BANK_B"} {
			mean, sd, lo, hi := int64(1000), int64(300), int64(900), int64(1100)
			rs = append(rs, &schema.PolicyEvaluation{ExpID: id, Iteration: i, Agent: a, ProposedPolicy: pol(f * 0.9), OldCost: 50000,
				NewCost: 49000, Delta: 1000, Accepted: a == "BANK_A", Reason: "improvement: total delta $500.00", NumSamples: 50,
				SampleDetails: json.RawMessage(`[{"seed":1,"old_cost":50000,"new_cost":49000,"delta":1000}]`), Seed: int64(i), Timestamp: start,
				EvaluationMode: "bootstrap", ReasonCode: schema.ReasonImproved, MeanDelta: &mean, DeltaStdDev: &sd, DeltaCILower: &lo, DeltaCIUpper: &hi})
		}
		rs = append(rs, &schema.Event{ExpID: id, Seq: int64(i), Iteration: i, EventType: "llm_interaction", Timestamp: start,
			Data: json.RawMessage(`{"agent":"BANK_A","attempt":1,"model":"m","system_prompt":"SYSTEM PROMPT TEXT","user_prompt":"USER PROMPT ` +
				fmt.Sprint(i) + `","raw_response":"ANSWER","prompt_tokens":10,"completion_tokens":2,"latency_seconds":0.5}`)})
		f *= 0.9
	}
	if done {
		rs = append(rs, &schema.ExperimentCompleted{ExpID: id, CompletedAt: start.Add(time.Minute), Status: "completed",
			ConvergenceReason: "max_iterations", NumIterations: iters, FinalCost: 90000, BestCost: 90000,
			FinalPolicies:   json.RawMessage(fmt.Sprintf(`{"BANK_A":%s,"BANK_B":%s}`, pol(f), pol(0.5))),
			AgentFinalCosts: map[string]int64{"BANK_A": 40000, "BANK_B": 50000}, DurationSeconds: 60})
	}
	return rs
}

func testRecords() []schema.Record {
	rs := run("exp2-a", "exp2", 1, 3, true, t0)
	rs = append(rs, run("exp2-b", "exp2", 2, 2, false, t0.Add(time.Hour))...)
	rs = append(rs, &schema.ExperimentStarted{ExpID: "evil-1", Name: hostile, Type: "generic", Config: json.RawMessage(`{}`),
		Scenario: hostile, Model: hostile, StartedAt: t0, ProgramVersion: hostile, Host: "h", ConfigHash: "c"},
		&schema.Iteration{ExpID: "evil-1", Iteration: 1, TotalCost: 1, AgentCosts: map[string]int64{hostile: 1}, Timestamp: t0})
	return rs
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestAPI(t *testing.T) {
	srv, _ := testServer(t)
	cases := []struct {
		path   string
		status int
		check  func(t *testing.T, body string)
	}{
		{"/api/runs", 200, func(t *testing.T, body string) {
			var runs []store.ExperimentSummary
			mustJSON(t, body, &runs)
			if len(runs) != 3 || runs[0].ExperimentID != "exp2-b" || runs[0].Status != "lost" || runs[0].LastSeen == nil {
				t.Errorf("runs %+v", runs)
			}
		}},
		{"/api/runs?status=completed&name=exp2", 200, func(t *testing.T, body string) {
			var runs []store.ExperimentSummary
			mustJSON(t, body, &runs)
			if len(runs) != 1 || runs[0].ExperimentID != "exp2-a" || *runs[0].FinalCost != 90000 || runs[0].PromptTokens != 30 {
				t.Errorf("completed runs %+v", runs)
			}
		}},
		{"/api/runs?model=builtin:search&sort=-final_cost&limit=1", 200, func(t *testing.T, body string) {
			var runs []store.ExperimentSummary
			mustJSON(t, body, &runs)
			if len(runs) != 1 {
				t.Errorf("limit=1 gave %d runs", len(runs))
			}
		}},
		{"/api/runs/exp2-a", 200, func(t *testing.T, body string) {
			var d store.ExperimentDetail
			mustJSON(t, body, &d)
			if d.ExperimentID != "exp2-a" || d.MasterSeed != 1 || d.AgentFinalCosts["BANK_A"] != 40000 || len(d.Config) == 0 {
				t.Errorf("run %+v", d)
			}
		}},
		{"/api/runs/exp2-a/iterations", 200, func(t *testing.T, body string) {
			var its []store.IterationRow
			mustJSON(t, body, &its)
			if len(its) != 3 || its[2].AgentCosts["BANK_A"] != 47000 {
				t.Errorf("iterations %+v", its)
			}
		}},
		{"/api/runs/exp2-a/evaluations?agent=BANK_A&iteration=2", 200, func(t *testing.T, body string) {
			var evs []store.EvaluationRow
			mustJSON(t, body, &evs)
			if len(evs) != 1 || evs[0].ReasonCode != "improved" || *evs[0].DeltaCILower != 900 {
				t.Errorf("evaluations %+v", evs)
			}
		}},
		{"/api/runs/exp2-a/events?type=llm_interaction", 200, func(t *testing.T, body string) {
			var evs []store.EventRow
			mustJSON(t, body, &evs)
			if len(evs) != 3 {
				t.Errorf("%d events", len(evs))
			}
		}},
		{"/api/runs/exp2-a/audit", 200, func(t *testing.T, body string) {
			if !strings.Contains(body, "USER PROMPT 2") || !strings.Contains(body, `"reason_code": "improved"`) {
				t.Errorf("audit %s", body)
			}
		}},
		{"/api/compare?id=exp2-a&id=exp2-b&group_by=config", 200, func(t *testing.T, body string) {
			var c struct {
				Runs   []map[string]any `json:"runs"`
				Groups []map[string]any `json:"groups"`
			}
			mustJSON(t, body, &c)
			if len(c.Runs) != 2 || len(c.Groups) != 2 { // max_iterations differ
				t.Errorf("compare %s", body)
			}
		}},
		{"/api/chart.svg?id=exp2-a", 200, func(t *testing.T, body string) {
			if !strings.HasPrefix(body, "<?xml") || !strings.Contains(body, "BANK_A: cost per iteration") {
				t.Errorf("chart %.200s", body)
			}
		}},
		{"/api/runs/nope", 404, nil},
		{"/api/runs/nope/iterations", 404, nil},
		{"/api/runs/bad%20id", 400, nil},
		{"/api/runs?status=sleeping", 400, nil},
		{"/api/runs?sort=color", 400, nil},
		{"/api/runs?limit=-3", 400, nil},
		{"/api/runs/exp2-a/evaluations?iteration=x", 400, nil},
		{"/api/compare", 400, nil},
		{"/api/compare?id=exp2-a&group_by=seed", 400, nil},
		{"/api/compare?id=exp2-a&id=nope", 404, nil},
		{"/api/chart.svg?id=exp2-a&agent=BANK_Z", 400, nil},
		{"/api/chart.svg?id=exp2-a&parameter=nope", 400, nil},
		{"/api/nothing", 404, nil},
		{"/api/live?experiment=bad%20id", 400, nil},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			code, body, h := get(t, srv.URL+c.path)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, body)
			}
			if code >= 400 {
				var e struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.Status != code {
					t.Errorf("error body %q (content type %s), want {error, status}", body, h.Get("Content-Type"))
				}
			}
			if c.check != nil {
				c.check(t, body)
			}
		})
	}
}

func mustJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%v: %.300s", err, body)
	}
}

// TestPagesEscape: names, agents and prompts from the database are text in
// every page, never markup.
func TestPagesEscape(t *testing.T) {
	srv, _ := testServer(t)
	for _, path := range []string{"/", "/runs/evil-1", "/runs/evil-1/audit", "/compare?id=evil-1&id=exp2-a", "/fragment/runs", "/fragment/runs/evil-1"} {
		code, body, _ := get(t, srv.URL+path)
		if code != 200 {
			t.Errorf("%s: status %d: %.300s", path, code, body)
			continue
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s renders the hostile name as markup", path)
		}
		if path != "/fragment/runs/evil-1" && path != "/runs/evil-1/audit" && !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s does not show the hostile name as text", path)
		}
	}
}

func TestPages(t *testing.T) {
	srv, _ := testServer(t)
	for _, c := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{"exp2-a", "exp2-b", `class="badge lost"`, "$900.00", `name="id"`}},
		{"/?status=completed", 200, []string{"exp2-a"}},
		{"/runs/exp2-a", 200, []string{`id="chart"`, "/api/chart.svg?id=exp2-a", "Final policies", "improved", "95% CI [$9.00, $11.00]"}},
		{"/runs/exp2-a/audit", 200, []string{"SYSTEM PROMPT TEXT", "USER PROMPT 3", "ANSWER", "Policy change", "parameter initial_liquidity_fraction"}},
		{"/compare?id=exp2-a&id=exp2-b", 200, []string{"compare-chart", "exp2-a", "exp2-b", "By configuration"}},
		{"/live", 200, []string{`id="feed"`}},
		{"/runs/nope", 404, []string{"not found"}},
		{"/runs/bad%20id", 400, []string{"not an experiment id"}},
		{"/?status=sleeping", 400, []string{"use running"}},
		{"/static/app.js", 200, []string{"EventSource"}},
	} {
		code, body, _ := get(t, srv.URL+c.path)
		if code != c.status {
			t.Errorf("%s: status %d, want %d", c.path, code, c.status)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", c.path, w)
			}
		}
	}
}

// TestLostRuns: a running run silent for longer than the lost-after time
// shows as lost.
func TestLostRuns(t *testing.T) {
	srv, _ := testServerLost(t, time.Minute)
	_, body, _ := get(t, srv.URL+"/fragment/runs")
	if !strings.Contains(body, `class="badge lost"`) || strings.Contains(body, `class="badge running"`) {
		t.Errorf("a run silent since 2026-11-25 is not shown as lost:\n%s", body)
	}
	srv, _ = testServerLost(t, 1e6*time.Hour)
	_, body, _ = get(t, srv.URL+"/fragment/runs")
	if strings.Contains(body, `class="badge lost"`) || !strings.Contains(body, `class="badge running"`) {
		t.Errorf("a run within its stall time is not shown as running:\n%s", body)
	}
}

func TestToken(t *testing.T) {
	srv, _ := testServer(t, WithToken("s3cret"))
	if code, _, _ := get(t, srv.URL+"/api/runs"); code != http.StatusUnauthorized {
		t.Errorf("no token: status %d", code)
	}
	if code, _, _ := get(t, srv.URL+"/api/runs?token=wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d", code)
	}
	resp, err := http.Get(srv.URL + "/?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "simcash_token" {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly {
		t.Fatalf("?token=: status %d, cookie %v", resp.StatusCode, cookie)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/runs", nil)
	req.AddCookie(cookie)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("with the cookie: %v %v", err, resp.Status)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/api/runs", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("with the bearer token: %v %v", err, resp.Status)
	}
}

// TestLiveEvents: a record published on the bus reaches a page's event
// stream, filtered by experiment.
func TestLiveEvents(t *testing.T) {
	feed := make(chan []byte)
	live := func(ctx context.Context, fn func(string, []byte)) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case b := <-feed:
				fn("subject", b)
			}
		}
	}
	srv, _ := testServer(t, WithLive(live))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Config.Handler.(*Server).Run(ctx)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/live?experiment=exp2-b", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	read := func() string {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if hello := read(); !strings.Contains(hello, "event: hello") {
		t.Fatalf("first event %q", hello)
	}
	for _, id := range []string{"exp2-a", "exp2-b"} {
		b, _ := schema.Encode(&schema.Iteration{ExpID: id, Iteration: 7, TotalCost: 123456, Timestamp: t0})
		select {
		case feed <- b:
		case <-time.After(10 * time.Second):
			t.Fatal("the live source was not read")
		}
	}
	got := read()
	if !strings.Contains(got, `"experiment_id":"exp2-b"`) || !strings.Contains(got, "iteration 7: total cost $1,234.56") || strings.Contains(got, "exp2-a") {
		t.Errorf("live record %q", got)
	}
}
