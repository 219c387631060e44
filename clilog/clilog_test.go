package clilog

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
)

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "runner", slog.LevelInfo).With("db", "a b.db")
	log.Debug("hidden")
	log.Info("persister consuming", "n", 3)
	log.Warn("stream not ready", "err", errors.New("timeout"))
	log.WithGroup("g").Error("failed", "k", "")
	want := "runner: persister consuming (db=\"a b.db\" n=3)\n" +
		"runner: warning: stream not ready (db=\"a b.db\" err=timeout)\n" +
		"runner: error: failed (db=\"a b.db\" g.k=\"\")\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelWarn, "debug": slog.LevelDebug, "INFO": slog.LevelInfo, "error": slog.LevelError} {
		got, err := ParseLevel(in, slog.LevelWarn)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("loud", slog.LevelWarn); err == nil {
		t.Error("ParseLevel(loud) accepted")
	}
}
