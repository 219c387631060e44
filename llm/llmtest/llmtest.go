// Package llmtest is a scripted stand-in for model providers in tests: an
// httptest server that answers with scripted replies in the real wire
// formats of OpenAI's chat completions and Anthropic's messages, and
// records what it was sent.
package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// The paths each provider's client posts to.
const (
	OpenAIPath    = "/v1/chat/completions"
	AnthropicPath = "/v1/messages"
)

// Reply is one scripted HTTP answer.
type Reply struct {
	Status int
	Header map[string]string
	Body   string
	// Block holds the request until the client gives up or the test ends,
	// to script a timeout.
	Block bool
	// Delay holds the answer this long, like a slow model.
	Delay time.Duration
}

// Request is what the server was sent.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// JSON decodes the request body into a generic map (nil if it is not JSON).
func (r Request) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Server answers requests to path with its replies in order; the last
// reply repeats. Any other path gets a 404.
type Server struct {
	URL string

	srv     *httptest.Server
	path    string
	release chan struct{}

	mu      sync.Mutex
	replies []Reply
	reply   func(Request) Reply // set by NewFunc
	seen    []Request
}

// NewFunc starts a server whose answer to each request is reply(request),
// whatever order requests come in.
func NewFunc(t testing.TB, path string, reply func(Request) Reply) *Server {
	t.Helper()
	s := New(t, path, Reply{})
	s.reply = reply
	return s
}

// New starts a server that is closed when the test ends.
func New(t testing.TB, path string, replies ...Reply) *Server {
	t.Helper()
	if len(replies) == 0 {
		t.Fatal("llmtest.New: no replies scripted")
	}
	s := &Server{path: path, replies: replies, release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	// Unblock held handlers before Close waits for them.
	t.Cleanup(func() { close(s.release); s.srv.Close() })
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.seen = append(s.seen, req)
	rep := s.replies[min(len(s.seen)-1, len(s.replies)-1)]
	s.mu.Unlock()
	if s.reply != nil {
		rep = s.reply(req)
	}
	if rep.Delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-s.release:
		case <-time.After(rep.Delay):
		}
	}
	if r.URL.Path != s.path {
		http.Error(w, `{"error":{"message":"no such path `+r.URL.Path+`"}}`, http.StatusNotFound)
		return
	}
	if rep.Block {
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}

// Requests returns what the server was sent so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.seen...)
}

// OpenAI is a successful chat completion with usage.
func OpenAI(text string, prompt, completion int) Reply {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "test-model",
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": text, "refusal": nil},
		}},
		"usage": map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
	})
	return Reply{Status: http.StatusOK, Body: string(b)}
}

// OpenAIError is an OpenAI error answer.
func OpenAIError(status int, typ, msg string) Reply {
	return Reply{Status: status, Body: fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":null,"code":null}}`, msg, typ)}
}

// Anthropic is a successful message with usage; a non-empty thinking adds
// a thinking block before the text, as extended thinking answers have.
func Anthropic(text string, in, out int, thinking string) Reply {
	var content []any
	if thinking != "" {
		content = append(content, map[string]any{"type": "thinking", "thinking": thinking, "signature": "sig"})
	}
	content = append(content, map[string]any{"type": "text", "text": text})
	b, _ := json.Marshal(map[string]any{
		"id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
		"content": content, "stop_reason": "end_turn", "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": in, "output_tokens": out},
	})
	return Reply{Status: http.StatusOK, Body: string(b)}
}

// AnthropicError is an Anthropic error answer.
func AnthropicError(status int, typ, msg string) Reply {
	return Reply{Status: status, Body: fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg)}
}
