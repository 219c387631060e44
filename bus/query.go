package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"simcash/store"
)

// The query protocol: a JSON queryRequest on QuerySubject(db) with a reply
// inbox; the persister answers with the JSON queryResponse, split into
// chunks (header Simcash-Chunk: "i/n") when it exceeds the server's
// maximum payload, since event logs with LLM prompts can be large.
const (
	headerChunk = "Simcash-Chunk"

	methodPing        = "ping"
	methodList        = "list"
	methodShow        = "show"
	methodIterations  = "iterations"
	methodEvents      = "events"
	methodEvaluations = "evaluations"
	methodQuery       = "query"
	methodExport      = "export"
)

type queryRequest struct {
	Method string             `json:"method"`
	ID     string             `json:"id,omitempty"`
	List   *store.ListOptions `json:"list,omitempty"`
	Events *store.EventFilter `json:"events,omitempty"`
	Evals  *store.EvalFilter  `json:"evals,omitempty"`
	SQL    string             `json:"sql,omitempty"`
	Limit  int                `json:"limit,omitempty"`
	Dir    string             `json:"dir,omitempty"`
	Format string             `json:"format,omitempty"`
	IDs    []string           `json:"ids,omitempty"`
}

type queryResponse struct {
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	NotFound bool            `json:"not_found,omitempty"`
	Invalid  bool            `json:"invalid,omitempty"`
}

// serveQueries answers read queries on subject by calling r until the
// returned stop is called.
func serveQueries(ctx context.Context, nc *nats.Conn, subject string, r store.Reader, log *slog.Logger) (stop func(), err error) {
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		resp := answer(qctx, r, m.Data)
		b, err := json.Marshal(resp)
		if err != nil {
			b, _ = json.Marshal(queryResponse{Error: "encode result: " + err.Error()})
		}
		if err := replyChunked(nc, m.Reply, b); err != nil {
			log.Warn("query reply failed", "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("serve queries on %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func answer(ctx context.Context, r store.Reader, data []byte) queryResponse {
	var q queryRequest
	if err := json.Unmarshal(data, &q); err != nil {
		return queryResponse{Error: "bad query: " + err.Error()}
	}
	var (
		res any
		err error
	)
	switch q.Method {
	case methodPing:
		res = "pong"
	case methodList:
		res, err = r.List(ctx, deref(q.List))
	case methodShow:
		res, err = r.Show(ctx, q.ID)
	case methodIterations:
		res, err = r.Iterations(ctx, q.ID)
	case methodEvents:
		res, err = r.Events(ctx, q.ID, deref(q.Events))
	case methodEvaluations:
		res, err = r.Evaluations(ctx, q.ID, deref(q.Evals))
	case methodQuery:
		res, err = r.Query(ctx, q.SQL, q.Limit)
	case methodExport:
		res, err = r.Export(ctx, q.Dir, q.Format, q.IDs)
	default:
		return queryResponse{Error: fmt.Sprintf("unknown query %q (persister and results tool of different versions?)", q.Method)}
	}
	if err != nil {
		return queryResponse{Error: err.Error(), NotFound: errors.Is(err, store.ErrNotFound), Invalid: errors.Is(err, store.ErrInvalidRequest)}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return queryResponse{Error: "encode result: " + err.Error()}
	}
	return queryResponse{Result: b}
}

func deref[T any](p *T) T {
	if p == nil {
		var z T
		return z
	}
	return *p
}

func replyChunked(nc *nats.Conn, reply string, b []byte) error {
	size := int(nc.MaxPayload()) - 1024 // room for headers
	n := max(1, (len(b)+size-1)/size)
	for i := range n {
		m := nats.NewMsg(reply)
		m.Data = b[i*size : min(len(b), (i+1)*size)]
		m.Header.Set(headerChunk, strconv.Itoa(i+1)+"/"+strconv.Itoa(n))
		if err := nc.PublishMsg(m); err != nil {
			return err
		}
	}
	return nc.Flush()
}

// RemoteReader implements store.Reader by asking the persister that holds
// the database, over NATS request/reply. It serves the results tool while
// the persister keeps the DuckDB file locked.
type RemoteReader struct {
	nc      *nats.Conn
	subject string
	own     bool
	// Timeout bounds one query (default 30s).
	Timeout time.Duration
}

var _ store.Reader = (*RemoteReader)(nil)

// NewRemoteReader queries the persister answering on subject over nc.
func NewRemoteReader(nc *nats.Conn, subject string) *RemoteReader {
	return &RemoteReader{nc: nc, subject: subject, Timeout: 30 * time.Second}
}

// OpenRemote finds the persister that holds dbPath through its info file,
// connects to its NATS server (credentials from cfg) and checks that it
// answers. Close the reader to close the connection.
func OpenRemote(ctx context.Context, dbPath string, cfg Config) (*RemoteReader, error) {
	info, err := ReadInfo(dbPath)
	if err != nil {
		return nil, err
	}
	cfg.URL = info.URL
	if cfg.ConnectTimeout <= 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = "simcash-results"
	}
	nc, err := Connect(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s is held by persister pid %d, but its bus is unreachable: %w (if no persister runs, delete %s)",
			dbPath, info.PID, err, InfoFile(dbPath))
	}
	r := NewRemoteReader(nc, info.Subject)
	r.own = true
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.call(pctx, queryRequest{Method: methodPing}, nil); err != nil {
		nc.Close()
		return nil, fmt.Errorf("database %s is held by persister pid %d, which does not answer on %s: %w (if no persister runs, delete %s)",
			dbPath, info.PID, info.URL, err, InfoFile(dbPath))
	}
	return r, nil
}

// Close closes the connection OpenRemote opened.
func (r *RemoteReader) Close() error {
	if r.own {
		r.nc.Close()
	}
	return nil
}

func (r *RemoteReader) List(ctx context.Context, opts store.ListOptions) ([]store.ExperimentSummary, error) {
	var out []store.ExperimentSummary
	return out, r.call(ctx, queryRequest{Method: methodList, List: &opts}, &out)
}

func (r *RemoteReader) Show(ctx context.Context, id string) (*store.ExperimentDetail, error) {
	var out *store.ExperimentDetail
	return out, r.call(ctx, queryRequest{Method: methodShow, ID: id}, &out)
}

func (r *RemoteReader) Iterations(ctx context.Context, id string) ([]store.IterationRow, error) {
	var out []store.IterationRow
	return out, r.call(ctx, queryRequest{Method: methodIterations, ID: id}, &out)
}

func (r *RemoteReader) Events(ctx context.Context, id string, f store.EventFilter) ([]store.EventRow, error) {
	var out []store.EventRow
	return out, r.call(ctx, queryRequest{Method: methodEvents, ID: id, Events: &f}, &out)
}

func (r *RemoteReader) Evaluations(ctx context.Context, id string, f store.EvalFilter) ([]store.EvaluationRow, error) {
	var out []store.EvaluationRow
	return out, r.call(ctx, queryRequest{Method: methodEvaluations, ID: id, Evals: &f}, &out)
}

func (r *RemoteReader) Query(ctx context.Context, query string, limit int) (*store.QueryResult, error) {
	var out *store.QueryResult
	return out, r.call(ctx, queryRequest{Method: methodQuery, SQL: query, Limit: limit}, &out)
}

// Export asks the persister to write the files; dir must be absolute and on
// a file system the persister shares (the database's machine).
func (r *RemoteReader) Export(ctx context.Context, dir, format string, ids []string) ([]store.ExportedFile, error) {
	var out []store.ExportedFile
	return out, r.call(ctx, queryRequest{Method: methodExport, Dir: dir, Format: format, IDs: ids}, &out)
}

// call sends q and decodes the (possibly chunked) answer into out.
func (r *RemoteReader) call(ctx context.Context, q queryRequest, out any) error {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	req, err := json.Marshal(q)
	if err != nil {
		return err
	}
	inbox := r.nc.NewRespInbox()
	sub, err := r.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("query persister: %w", err)
	}
	defer sub.Unsubscribe()
	if err := r.nc.PublishMsg(&nats.Msg{Subject: r.subject, Reply: inbox, Data: req}); err != nil {
		return fmt.Errorf("query persister: %w", err)
	}
	var body []byte
	for got, total := 0, 1; got < total; {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("query persister on %s: %w (is it running?)", r.subject, err)
		}
		if m.Header.Get("Status") == "503" {
			return fmt.Errorf("query persister on %s: %w", r.subject, nats.ErrNoResponders)
		}
		var i, n int
		if _, err := fmt.Sscanf(m.Header.Get(headerChunk), "%d/%d", &i, &n); err != nil || i != got+1 || n < 1 {
			return fmt.Errorf("query persister: bad reply chunk %q", m.Header.Get(headerChunk))
		}
		body = append(body, m.Data...)
		got, total = i, n
	}
	var resp queryResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("query persister: bad reply: %w", err)
	}
	if resp.Error != "" {
		if resp.NotFound {
			return remoteError{resp.Error, store.ErrNotFound}
		}
		if resp.Invalid {
			return remoteError{resp.Error, store.ErrInvalidRequest}
		}
		return errors.New(resp.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("query persister: decode %s result: %w", q.Method, err)
	}
	return nil
}

// remoteError keeps the persister's message and the sentinel it wrapped.
type remoteError struct {
	msg  string
	kind error
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.kind }

// OpenReader opens the results database at dbPath read-only or, while a
// persister holds it, a reader that asks that persister (found through the
// database's info file, with credentials from cfg). Call close when done.
func OpenReader(ctx context.Context, dbPath string, cfg Config) (r store.Reader, close func(), err error) {
	s, err := store.OpenReadOnly(ctx, dbPath)
	if err == nil {
		return s, func() { s.Close() }, nil
	}
	if !store.IsLocked(err) {
		return nil, nil, err
	}
	rr, err := OpenRemote(ctx, dbPath, cfg)
	if err != nil {
		return nil, nil, err
	}
	return rr, func() { rr.Close() }, nil
}
