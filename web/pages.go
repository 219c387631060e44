package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"simcash/analysis"
	"simcash/experiment"
	"simcash/money"
	"simcash/store"
)

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"dollars":  money.Dollars,
		"dollarsF": money.DollarsF,
		"centsPtr": func(p *int64) string {
			if p == nil {
				return "-"
			}
			return money.Dollars(*p)
		},
		"params": experiment.FormatParams,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"whenPtr": func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"verdict": analysis.Verdict,
		"stats":   analysis.EvaluationStats,
		"json":    prettyJSON,
		"f4":      func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) },
		"query":   url.QueryEscape,
		"list":    func(xs ...string) []string { return xs },
		// sortq is the runs page's link that sorts by key, descending when
		// it already sorts ascending by key.
		"sortq": func(rawQuery, key string) template.URL {
			q, _ := url.ParseQuery(rawQuery)
			next := key
			if q.Get("sort") == key {
				next = "-" + key
			}
			q.Set("sort", next)
			return template.URL("?" + q.Encode())
		},
		// chartURL is the chart of ids already escaped into a query.
		"chartURL": func(idQuery string) template.URL { return template.URL("/api/chart.svg?" + idQuery) },
	}
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// render executes a template; a failure before anything was written is
// answered with the error's status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any, err error) {
	if err != nil {
		code, msg := status(err)
		if code == http.StatusInternalServerError {
			s.log.Warn("page", "path", r.URL.Path, "err", err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		s.pages.ExecuteTemplate(w, "error.html", map[string]any{"Title": http.StatusText(code), "Status": code, "Message": msg})
		return
	}
	var b bytes.Buffer
	if err := s.pages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Warn("render", "template", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// runRow is one row of the runs table.
type runRow struct {
	store.ExperimentSummary
	Badge   string // the status: running | lost | completed | failed | interrupted
	Silence string // how long a lost run has been silent
}

type runsPage struct {
	Title   string
	Filter  store.ListOptions
	Rows    []runRow
	Models  []string
	Query   string
	Sort    string
	Limited bool
}

func (s *Server) runsData(ctx context.Context, r *http.Request) (*runsPage, error) {
	o, err := listOptions(r)
	if err != nil {
		return nil, err
	}
	v, err := s.read(r, func(ctx context.Context, rd store.Reader) (any, error) { return rd.List(ctx, o) })
	if err != nil {
		return nil, err
	}
	list := v.([]store.ExperimentSummary)
	p := &runsPage{Title: "Runs", Filter: o, Query: r.URL.RawQuery, Sort: o.Sort, Limited: o.Limit > 0 && len(list) == o.Limit}
	models := map[string]bool{}
	for _, e := range list {
		p.Rows = append(p.Rows, s.row(e))
		models[e.Model] = true
	}
	p.Models = slices.Sorted(maps.Keys(models))
	return p, nil
}

func (s *Server) row(e store.ExperimentSummary) runRow {
	row := runRow{ExperimentSummary: e, Badge: e.Status}
	if e.Status == "lost" {
		last := e.StartedAt
		if e.LastSeen != nil {
			last = *e.LastSeen
		}
		row.Silence = s.now().Sub(last).Round(time.Second).String()
	}
	return row
}

func (s *Server) pageRuns(w http.ResponseWriter, r *http.Request) {
	p, err := s.runsData(r.Context(), r)
	s.render(w, r, "runs.html", p, err)
}

func (s *Server) fragmentRuns(w http.ResponseWriter, r *http.Request) {
	p, err := s.runsData(r.Context(), r)
	s.render(w, r, "runrows", p, err)
}

// runPage is one run: its summary, charts, iterations, evaluations and
// final policies.
type runPage struct {
	Title       string
	Run         *analysis.Run
	Row         runRow
	Agents      []string
	Config      string
	Scenario    string
	Evaluations []store.EvaluationRow
	Final       map[string]string // agent -> final policy JSON
	Iterations  int
}

func (s *Server) runData(r *http.Request) (*runPage, error) {
	id, err := runID(r)
	if err != nil {
		return nil, err
	}
	v, err := s.read(r, func(ctx context.Context, rd store.Reader) (any, error) { return analysis.Load(ctx, rd, id) })
	if err != nil {
		return nil, err
	}
	run := v.(*analysis.Run)
	p := &runPage{Title: run.ID(), Run: run, Row: s.row(run.Detail.ExperimentSummary), Agents: run.Agents(),
		Evaluations: run.Evaluations, Final: map[string]string{}, Iterations: len(run.Iterations)}
	var cfg map[string]json.RawMessage
	if json.Unmarshal(run.Detail.Config, &cfg) == nil {
		var text string
		if json.Unmarshal(cfg["scenario_content"], &text) == nil {
			p.Scenario = text
		}
		delete(cfg, "scenario_content")
		b, _ := json.Marshal(cfg)
		p.Config = prettyJSON(b)
	}
	var pols map[string]json.RawMessage
	if json.Unmarshal(run.Detail.FinalPolicies, &pols) == nil {
		for a, doc := range pols {
			p.Final[a] = prettyJSON(doc)
		}
	}
	return p, nil
}

func (s *Server) pageRun(w http.ResponseWriter, r *http.Request) {
	p, err := s.runData(r)
	s.render(w, r, "run.html", p, err)
}

func (s *Server) fragmentRun(w http.ResponseWriter, r *http.Request) {
	p, err := s.runData(r)
	s.render(w, r, "rundetail", p, err)
}

// auditPage is a run's audit trail with the policy diffs of its accepted
// changes.
type auditPage struct {
	Title   string
	Run     *analysis.Run
	Entries []auditView
}

type auditView struct {
	analysis.AuditEntry
	Diff *analysis.PolicyDiff // what the accepted proposal changed
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	v, err := s.read(r, func(ctx context.Context, rd store.Reader) (any, error) {
		run, events, err := loadAudit(ctx, r, rd)
		if err != nil {
			return nil, err
		}
		p := &auditPage{Title: "Audit of " + run.ID(), Run: run}
		for _, e := range run.Audit(events) {
			av := auditView{AuditEntry: e}
			if e.Evaluation != nil && e.Evaluation.Accepted {
				av.Diff, _ = run.Diff(e.Agent, e.Iteration, e.Iteration+1)
			}
			p.Entries = append(p.Entries, av)
		}
		return p, nil
	})
	s.render(w, r, "audit.html", v, err)
}

// comparePage shows ticked runs side by side.
type comparePage struct {
	Title   string
	IDs     []string
	IDQuery string
	Cmp     *analysis.Comparison
	Agents  []string
	Params  map[string][]string // agent -> parameter names
}

func (s *Server) pageCompare(w http.ResponseWriter, r *http.Request) {
	v, err := s.read(r, func(ctx context.Context, rd store.Reader) (any, error) {
		runs, err := loadCompared(ctx, r, rd)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(runs))
		for i, run := range runs {
			ids[i] = run.ID()
		}
		c := analysis.Compare(runs, true)
		p := &comparePage{Title: "Compare " + strconv.Itoa(len(ids)) + " runs", IDs: ids, Cmp: c, Params: map[string][]string{}}
		var q []string
		for _, id := range ids {
			q = append(q, "id="+url.QueryEscape(id))
		}
		p.IDQuery = strings.Join(q, "&")
		agents, params := map[string]bool{}, map[string]map[string]bool{}
		for _, run := range c.Runs {
			for a := range run.AgentCosts {
				agents[a] = true
			}
			for a, ps := range run.FinalParams {
				if params[a] == nil {
					params[a] = map[string]bool{}
				}
				for k := range ps {
					params[a][k] = true
				}
			}
		}
		p.Agents = slices.Sorted(maps.Keys(agents))
		for a, ps := range params {
			p.Params[a] = slices.Sorted(maps.Keys(ps))
		}
		return p, nil
	})
	s.render(w, r, "compare.html", v, err)
}

func (s *Server) pageLive(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "live.html", map[string]any{"Title": "Live feed"}, nil)
}
