// Command results reads experiment results from the DuckDB database the
// persister writes: list, show, iterations, events and evaluations, as
// tables for people or JSON/CSV for programs; charts, comparisons, replays
// and audits, policy diffs, read-only SQL and Parquet/CSV export (package
// analysis); a web dashboard (serve, package web); and mark, which records
// how a lost run ended.
//
// It opens the database read-only. While a persister holds the file (DuckDB
// allows no reader beside a writer) it asks that persister instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"simcash/clilog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	level, err := clilog.ParseLevel(os.Getenv("SIMCASH_LOG_LEVEL"), slog.LevelInfo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "results: SIMCASH_LOG_LEVEL:", err)
		os.Exit(2)
	}
	slog.SetDefault(clilog.New(os.Stderr, "results", level))
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// extraCommands lets subcommands kept in their own files by other owners
// (tail.go) register themselves without editing the root command.
var extraCommands []func() *cobra.Command

// newRootCommand builds the command tree; tests run it in-process.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "results",
		Short:         "Read simcash experiment results",
		Long:          "Read simcash experiment results from the DuckDB database (--db, default $SIMCASH_DB or results/all.db).\nTables show costs in dollars; --format json|csv gives integer cents as stored.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		(&ListCommand{}).command(),
		(&ShowCommand{}).command(),
		(&IterationsCommand{}).command(),
		(&EventsCommand{}).command(),
		(&EvaluationsCommand{}).command(),
		(&ChartCommand{}).command(),
		(&CompareCommand{}).command(),
		(&ReplayCommand{}).command(),
		(&DiffCommand{}).command(),
		(&PoliciesCommand{}).command(),
		(&SQLCommand{}).command(),
		(&ExportCommand{}).command(),
		(&ServeCommand{}).command(),
		(&MarkCommand{}).command(),
	)
	for _, f := range extraCommands {
		root.AddCommand(f())
	}
	return root
}

// run executes the command line and returns the exit status: 0, 2 for a
// user error (bad flag, unknown experiment, missing database), 1 otherwise.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "results:", err)
	if isUsage(err) {
		return 2
	}
	return 1
}

// usageError marks an error the user can fix by changing the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return usageError{err} }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func isUsage(err error) bool {
	var u usageError
	// cobra reports an unknown subcommand as a plain error.
	return errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command")
}

// args checks the positional arguments of a subcommand, as a usage error.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != len(names) {
			return usagef("%s takes %d argument(s) (%s), got %d: see `%s --help`",
				cmd.Name(), len(names), strings.Join(names, " "), len(a), cmd.CommandPath())
		}
		return nil
	}
}
