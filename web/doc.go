// Package web is the results dashboard: HTML pages for runs, one run, a
// comparison, a run's audit trail and a live feed, a JSON API under /api/
// behind them, and Server-Sent Events fed from the bus so pages update as
// records arrive. Every asset is embedded; charts are server-side SVG drawn
// by package analysis, the same as `results chart`.
package web
