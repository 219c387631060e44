package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"simcash/analysis"
	"simcash/schema"
)

// liveRecord is what the dashboard's pages receive for each record.
type liveRecord struct {
	Kind         string    `json:"kind"` // record kind, or the event type for events
	Record       string    `json:"record"`
	ExperimentID string    `json:"experiment_id"`
	Summary      string    `json:"summary"`
	Time         time.Time `json:"time"`
}

// hub fans records out to the connected pages. A page too slow to take a
// record misses it (it re-reads the database on the next one anyway).
type hub struct {
	mu   sync.Mutex
	subs map[chan liveRecord]string // -> experiment filter ("" = all)
	live bool
}

func newHub() *hub { return &hub{subs: map[chan liveRecord]string{}} }

func (h *hub) setLive(v bool) {
	h.mu.Lock()
	h.live = v
	h.mu.Unlock()
}

func (h *hub) publish(subject string, data []byte) {
	r, err := schema.Decode(data)
	if err != nil {
		return // the persister dead-letters it; nothing to show
	}
	kind, summary := analysis.Describe(r)
	lr := liveRecord{Kind: kind, Record: string(r.Kind()), ExperimentID: r.ExperimentID(), Summary: summary, Time: time.Now().UTC()}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, exp := range h.subs {
		if exp != "" && exp != lr.ExperimentID {
			continue
		}
		select {
		case c <- lr:
		default:
		}
	}
}

func (h *hub) subscribe(exp string) (chan liveRecord, func(), bool) {
	c := make(chan liveRecord, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[c] = exp
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}, h.live
}

// serveLive streams records as Server-Sent Events: first a "hello" event
// saying whether the dashboard is connected to a bus, then one "record"
// event per record (?experiment=ID keeps one experiment's).
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	exp := r.URL.Query().Get("experiment")
	if exp != "" && !schema.ValidID(exp) {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("experiment %q is not an experiment id", exp))
		return
	}
	c, cancel, live := s.hub.subscribe(exp)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	hello, _ := json.Marshal(map[string]bool{"live": live})
	fmt.Fprintf(w, "event: hello\ndata: %s\n\n", hello)
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case lr := <-c:
			b, _ := json.Marshal(lr)
			fmt.Fprintf(w, "event: record\ndata: %s\n\n", b)
		}
		fl.Flush()
	}
}
