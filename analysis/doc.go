// Package analysis turns stored runs into what analysts read: per-agent
// trajectories and convergence charts, side-by-side comparisons and
// per-configuration statistics, the replay and audit trail of a run, and
// policy diffs and evolution. It reads through store.Reader, so it works on
// a free database file and through a running persister alike.
package analysis
