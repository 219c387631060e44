package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"simcash/analysis"
	"simcash/schema"
	"simcash/store"
)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/runs", s.apiRuns)
	m.HandleFunc("GET /api/runs/{id}", s.apiRun)
	m.HandleFunc("GET /api/runs/{id}/iterations", s.apiIterations)
	m.HandleFunc("GET /api/runs/{id}/evaluations", s.apiEvaluations)
	m.HandleFunc("GET /api/runs/{id}/events", s.apiEvents)
	m.HandleFunc("GET /api/runs/{id}/audit", s.apiAudit)
	m.HandleFunc("GET /api/compare", s.apiCompare)
	m.HandleFunc("GET /api/chart.svg", s.apiChart)
	m.HandleFunc("GET /api/live", s.serveLive)
	m.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such endpoint: see the README's API section")
	})
	m.HandleFunc("GET /{$}", s.pageRuns)
	m.HandleFunc("GET /fragment/runs", s.fragmentRuns)
	m.HandleFunc("GET /runs/{id}", s.pageRun)
	m.HandleFunc("GET /fragment/runs/{id}", s.fragmentRun)
	m.HandleFunc("GET /runs/{id}/audit", s.pageAudit)
	m.HandleFunc("GET /compare", s.pageCompare)
	m.HandleFunc("GET /live", s.pageLive)
}

// httpError is an error with the status it should be answered with.
type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// status maps an error to its HTTP status and message.
func status(err error) (int, string) {
	var he httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, analysis.ErrBadArgument), errors.Is(err, store.ErrInvalidRequest):
		return http.StatusBadRequest, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": msg, "status": code})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// withReader opens the results for one request and answers with what f
// returns, as JSON.
func (s *Server) withReader(w http.ResponseWriter, r *http.Request, f func(ctx context.Context, rd store.Reader) (any, error)) {
	v, err := s.read(r, f)
	if err != nil {
		code, msg := status(err)
		if code == http.StatusInternalServerError {
			s.log.Warn("api", "path", r.URL.Path, "err", err)
		}
		apiError(w, code, msg)
		return
	}
	writeJSON(w, v)
}

func (s *Server) read(r *http.Request, f func(ctx context.Context, rd store.Reader) (any, error)) (any, error) {
	rd, closeFn, err := s.open(r.Context())
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return f(r.Context(), rd)
}

// runID is the {id} of the path, checked.
func runID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !schema.ValidID(id) {
		return "", badRequest("%q is not an experiment id", id)
	}
	return id, nil
}

func intParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q: want a whole number from 0", name, v)
	}
	return n, nil
}

// listOptions reads the runs filter: name, status, model, hash, sort, limit.
func listOptions(r *http.Request) (store.ListOptions, error) {
	q := r.URL.Query()
	o := store.ListOptions{Name: q.Get("name"), Status: q.Get("status"), Model: q.Get("model"), ConfigHash: q.Get("hash"), Sweep: q.Get("sweep"),
		Sort: q.Get("sort"), Limit: 500}
	switch o.Status {
	case "", schema.StatusRunning, schema.StatusLost, schema.StatusCompleted, schema.StatusFailed, schema.StatusInterrupted:
	default:
		return o, badRequest("status=%q: use running, lost, completed, failed or interrupted", o.Status)
	}
	if k := strings.TrimPrefix(o.Sort, "-"); k != "" && !slices.Contains(store.SortKeys, k) {
		return o, badRequest("sort=%q: use one of %s, with '-' for descending", o.Sort, strings.Join(store.SortKeys, ", "))
	}
	if q.Get("limit") != "" {
		n, err := intParam(r, "limit")
		if err != nil {
			return o, err
		}
		o.Limit = n
	}
	return o, nil
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	s.withReader(w, r, func(ctx context.Context, rd store.Reader) (any, error) {
		o, err := listOptions(r)
		if err != nil {
			return nil, err
		}
		return rd.List(ctx, o)
	})
}

// withRun is withReader for the endpoints of one run: f gets the checked
// {id} and ?iteration=.
func (s *Server) withRun(w http.ResponseWriter, r *http.Request, f func(ctx context.Context, rd store.Reader, id string, iteration int) (any, error)) {
	s.withReader(w, r, func(ctx context.Context, rd store.Reader) (any, error) {
		id, err := runID(r)
		if err != nil {
			return nil, err
		}
		it, err := intParam(r, "iteration")
		if err != nil {
			return nil, err
		}
		return f(ctx, rd, id, it)
	})
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	s.withRun(w, r, func(ctx context.Context, rd store.Reader, id string, _ int) (any, error) { return rd.Show(ctx, id) })
}

func (s *Server) apiIterations(w http.ResponseWriter, r *http.Request) {
	s.withRun(w, r, func(ctx context.Context, rd store.Reader, id string, _ int) (any, error) {
		return rd.Iterations(ctx, id)
	})
}

func (s *Server) apiEvaluations(w http.ResponseWriter, r *http.Request) {
	s.withRun(w, r, func(ctx context.Context, rd store.Reader, id string, it int) (any, error) {
		return rd.Evaluations(ctx, id, store.EvalFilter{Agent: r.URL.Query().Get("agent"), Iteration: it})
	})
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	s.withRun(w, r, func(ctx context.Context, rd store.Reader, id string, it int) (any, error) {
		return rd.Events(ctx, id, store.EventFilter{Type: r.URL.Query().Get("type"), Iteration: it})
	})
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	s.withReader(w, r, func(ctx context.Context, rd store.Reader) (any, error) {
		run, events, err := loadAudit(ctx, r, rd)
		if err != nil {
			return nil, err
		}
		return run.Audit(events), nil
	})
}

func loadAudit(ctx context.Context, r *http.Request, rd store.Reader) (*analysis.Run, []store.EventRow, error) {
	id, err := runID(r)
	if err != nil {
		return nil, nil, err
	}
	run, err := analysis.Load(ctx, rd, id)
	if err != nil {
		return nil, nil, err
	}
	events, err := rd.Events(ctx, id, store.EventFilter{})
	return run, events, err
}

// compareIDs reads ?id=A&id=B (or id=A,B).
func compareIDs(r *http.Request) ([]string, error) {
	var ids []string
	for _, v := range r.URL.Query()["id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				if !schema.ValidID(id) {
					return nil, badRequest("%q is not an experiment id", id)
				}
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, badRequest("name the runs: ?id=A&id=B")
	}
	if len(ids) > 50 {
		return nil, badRequest("%d runs: compare at most 50", len(ids))
	}
	return ids, nil
}

// loadCompared loads the runs of ?id=.
func loadCompared(ctx context.Context, r *http.Request, rd store.Reader) ([]*analysis.Run, error) {
	ids, err := compareIDs(r)
	if err != nil {
		return nil, err
	}
	return analysis.LoadAll(ctx, rd, ids)
}

func (s *Server) apiCompare(w http.ResponseWriter, r *http.Request) {
	s.withReader(w, r, func(ctx context.Context, rd store.Reader) (any, error) {
		g := r.URL.Query().Get("group_by")
		if g != "" && g != "config" {
			return nil, badRequest("group_by=%q: the only grouping is config", g)
		}
		runs, err := loadCompared(ctx, r, rd)
		if err != nil {
			return nil, err
		}
		return analysis.Compare(runs, g == "config"), nil
	})
}

// apiChart draws the convergence chart of ?id=... as SVG (?agent=,
// ?parameter= as for `results chart`).
func (s *Server) apiChart(w http.ResponseWriter, r *http.Request) {
	v, err := s.read(r, func(ctx context.Context, rd store.Reader) (any, error) {
		runs, err := loadCompared(ctx, r, rd)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		err = analysis.Chart(&b, runs, "svg", analysis.ChartOptions{Agent: r.URL.Query().Get("agent"), Parameter: r.URL.Query().Get("parameter")})
		return b.String(), err
	})
	if err != nil {
		code, msg := status(err)
		apiError(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, v)
}
