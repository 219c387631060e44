package bus_test

import (
	"log/slog"
	"os"
	"testing"
)

// tmpDirs are removed after all tests (e.g. the persister binary's).
var tmpDirs []string

// Tests log warnings only; BUS_DEBUG=1 shows every batch.
func TestMain(m *testing.M) {
	lvl := slog.LevelWarn
	if os.Getenv("BUS_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
	code := m.Run()
	for _, d := range tmpDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
