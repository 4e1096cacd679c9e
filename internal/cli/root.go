// Package cli is oe-rt's command layer: cobra commands that parse flags into
// the options structs of the library packages, call them, and map errors to
// exit codes in one place (Main). No command holds logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/oe-rt/oe-rt/internal/cli.Version=…".
var Version = "dev"

// Exit codes shared by every command.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and found a failure (a failed call, a failed check)
	ExitUsage   = 2 // bad flags or arguments, or the tool itself could not run
)

// ExitError carries an exit code with an error. A nil Err prints nothing.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error as a usage error (exit 2).
func usageError(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

// registry holds the constructors of the subcommands; each command's file
// adds itself in an init function.
var registry []func(*env) *cobra.Command

func register(f func(*env) *cobra.Command) { registry = append(registry, f) }

// env is what commands need from the process: streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// NewRootCmd builds the command tree.
func NewRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "oe-rt",
		Short: "Build, check and measure OpenEdge/Baetyl function runtimes",
		Long: `oe-rt is the tool for people who write function runtimes for OpenEdge
(later Baetyl). It serves a reference runtime, checks any runtime against the
convention the function manager relies on, scaffolds new runtimes, and calls
and load-tests them.`,
		Example: `  oe-rt serve                       # the reference runtime with the built-in fixtures
  oe-rt call --address 127.0.0.1:50051 echo hello
  oe-rt conform                     # check the reference runtime
  oe-rt conform ./myruntime -- -c etc/openedge/service.yml`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	for _, f := range registry {
		root.AddCommand(f(e))
	}
	return root
}

// Main runs the command line and returns the exit code. It is the only place
// that turns errors into exit codes and installs the signal handler.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := NewRootCmd(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "oe-rt:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "oe-rt:", err)
	// cobra's own argument errors (unknown command, wrong number of
	// arguments) are usage errors.
	if isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}
