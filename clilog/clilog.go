// Package clilog holds the log handler of the interactive commands (runner,
// results): one line per record in the commands' own voice,
// "runner: warning: message (key=value ...)", so that the few log lines a
// user sees read like the rest of the output. Daemons (the persister) keep
// slog's structured text format for their log collectors.
package clilog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// New returns a logger writing records at level or above to w, prefixed
// with the program's name.
func New(w io.Writer, program string, level slog.Leveler) *slog.Logger {
	return slog.New(&handler{w: w, prefix: program + ": ", level: level, mu: new(sync.Mutex)})
}

// ParseLevel reads SIMCASH_LOG_LEVEL-style names (debug, info, warn,
// error); empty gives def.
func ParseLevel(s string, def slog.Level) (slog.Level, error) {
	if s == "" {
		return def, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return def, fmt.Errorf("log level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

type handler struct {
	w      io.Writer
	prefix string
	level  slog.Leveler
	attrs  string // pre-formatted " key=value" pairs from WithAttrs
	group  string
	mu     *sync.Mutex
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.prefix)
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	}
	b.WriteString(r.Message)
	attrs := h.attrs
	r.Attrs(func(a slog.Attr) bool {
		attrs += formatAttr(h.group, a)
		return true
	})
	if attrs != "" {
		b.WriteString(" (" + strings.TrimPrefix(attrs, " ") + ")")
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		c.attrs += formatAttr(h.group, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.group += name + "."
	return &c
}

func formatAttr(group string, a slog.Attr) string {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return ""
	}
	if a.Value.Kind() == slog.KindGroup {
		var s string
		for _, g := range a.Value.Group() {
			s += formatAttr(group+a.Key+".", g)
		}
		return s
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " =\"") {
		v = fmt.Sprintf("%q", v)
	}
	return " " + group + a.Key + "=" + v
}
