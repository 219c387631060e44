package bus_test

import (
	"log/slog"
	"os"
)

// Tests log warnings only; BUS_DEBUG=1 shows every batch.
func init() {
	lvl := slog.LevelWarn
	if os.Getenv("BUS_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
}
