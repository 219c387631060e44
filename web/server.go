package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"simcash/store"
)

//go:embed assets
var assets embed.FS

// OpenFunc opens the results for one request; close releases them. It is
// called per request so that the dashboard never holds the database file
// and a persister can always take it.
type OpenFunc func(ctx context.Context) (r store.Reader, close func(), err error)

// LiveFunc calls fn with each record published on the bus, as wire bytes,
// until ctx ends or it fails.
type LiveFunc func(ctx context.Context, fn func(subject string, data []byte)) error

// Server serves the dashboard.
type Server struct {
	open  OpenFunc
	live  LiveFunc
	token string
	log   *slog.Logger
	now   func() time.Time
	hub   *hub
	pages *template.Template
	mux   *http.ServeMux
}

// Option configures New.
type Option func(*Server)

// WithLive feeds live updates from the bus.
func WithLive(f LiveFunc) Option { return func(s *Server) { s.live = f } }

// WithToken requires this token (Authorization: Bearer, a cookie set by
// ?token=, or ?token= itself) on every request.
func WithToken(t string) Option { return func(s *Server) { s.token = t } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// New returns a dashboard over the results open returns.
func New(open OpenFunc, opts ...Option) *Server {
	s := &Server{open: open, log: slog.Default(), now: time.Now, mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	s.hub = newHub()
	s.pages = template.Must(template.New("").Funcs(s.funcs()).ParseFS(assets, "assets/*.html"))
	static, _ := fs.Sub(assets, "assets")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.routes()
	return s
}

// ErrNoBus is what a LiveFunc returns when there is no bus to follow (yet):
// Run then asks again a few seconds later, quietly.
var ErrNoBus = errors.New("no bus to follow")

// Run feeds the live hub from the bus until ctx ends, reconnecting with a
// growing pause after failures. Without WithLive it returns at once.
func (s *Server) Run(ctx context.Context) {
	if s.live == nil {
		return
	}
	pause := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		s.hub.setLive(true)
		err := s.live(ctx, s.hub.publish)
		s.hub.setLive(false)
		if ctx.Err() != nil {
			return
		}
		wait := 5 * time.Second
		if !errors.Is(err, ErrNoBus) {
			if time.Since(start) > time.Minute {
				pause = time.Second
			}
			s.log.Warn("live updates interrupted; retrying", "err", err, "in", pause)
			wait, pause = pause, min(2*pause, 30*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// ServeHTTP checks the token, then serves the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.token != "" && !s.authorized(w, r) {
		http.Error(w, "a token is required: open the address `results serve` printed, with ?token=", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	ok := func(t string) bool { return subtle.ConstantTimeCompare([]byte(t), []byte(s.token)) == 1 }
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && ok(strings.TrimPrefix(h, "Bearer ")) {
		return true
	}
	if c, err := r.Cookie("simcash_token"); err == nil && ok(c.Value) {
		return true
	}
	if t := r.URL.Query().Get("token"); t != "" && ok(t) {
		http.SetCookie(w, &http.Cookie{Name: "simcash_token", Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return true
	}
	return false
}
