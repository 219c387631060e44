// Command runner runs payment-settlement experiments and single simulations.
//
//	runner run EXPERIMENT.yaml      optimize the banks' policies, persist every record
//	runner validate EXPERIMENT.yaml check an experiment file and its scenario
//	runner list [DIR]               list experiment files
//	runner simulate SCENARIO.yaml   run one simulation and print its costs
//	runner rerun ID                 run a stored experiment again from the database
//	runner resume ID                continue an interrupted or lost run
//	runner sweep EXPERIMENT.yaml    queue runs over seeds, models and config values
//	runner worker                   run queued sweep jobs
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"simcash/clilog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError is a mistake in the user's input: one message, exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func userErr(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Progress is the output; the embedded persister's routine INFO lines
	// are not (SIMCASH_LOG_LEVEL=info shows them).
	level, err := clilog.ParseLevel(os.Getenv("SIMCASH_LOG_LEVEL"), slog.LevelWarn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner: SIMCASH_LOG_LEVEL:", err)
		os.Exit(2)
	}
	slog.SetDefault(clilog.New(os.Stderr, "runner", level))
	os.Exit(execute(ctx, os.Args[1:]))
}

func execute(ctx context.Context, args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var stopped interrupted
	if errors.As(err, &stopped) {
		return 130 // as a shell reports a process ended by SIGINT
	}
	fmt.Fprintln(os.Stderr, "runner:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "runner",
		Short:         "Run payment-settlement policy experiments and simulations",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(newSimulateCommand(), newRunCommand(), newRerunCommand(), newResumeCommand(), newSweepCommand(), newWorkerCommand(), newValidateCommand(), newListCommand())
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return userErr("%s needs %s (see '%s --help')", c.CommandPath(), what, c.CommandPath())
		}
		return nil
	}
}
