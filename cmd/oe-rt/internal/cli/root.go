// Package cli is oe-rt's command layer: cobra commands that parse flags into
// options structs, check them, hand them to the library packages, and map
// what comes back to exit codes in one place (exitCode, called by Main).
//
// Every command has the same shape, after cli/cli's pkg/cmd: an options
// struct; a constructor (newXCmd) that only binds flags onto it and wires
// completion; and a run function that turns the options into a library
// call; runE is the RunE they share (check the command line, run, name
// the flag of a field the library's Config.Validate refused). The rules
// about values live in the libraries' Config.Validate; a command's check
// keeps what is about the command line itself. Usage and configuration
// errors are typed (usageError, the libraries' ConfigError) and returned
// from argument validators, option checks and runs; NewRootCmd wires every
// command explicitly.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is set at build time with -ldflags "-X github.com/oe-rt/oe-rt/cmd/oe-rt/internal/cli.Version=…".
var Version = "dev"

// env is what commands take from the process: streams and environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// lookupEnv reads an environment variable; nil means os.Getenv.
	lookupEnv func(string) string
}

func (e *env) getenv(k string) string {
	if e.lookupEnv != nil {
		return e.lookupEnv(k)
	}
	return os.Getenv(k)
}

// NewRootCmd builds the command tree.
func NewRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "oe-rt",
		Short: "Build, check and measure OpenEdge/Baetyl function runtimes",
		Long: `oe-rt is the tool for people who write function runtimes for OpenEdge
(later Baetyl). It serves a reference runtime, checks any runtime against the
convention the function manager relies on, scaffolds new runtimes, and calls
and load-tests them.

Every command exits 0 when it did what was asked, 1 when it ran and found a
failure, and 2 when it could not do what was asked (bad flags, bad
configuration, a runtime that could not be started, an interruption).`,
		Example: `  oe-rt serve --address 127.0.0.1:50051   # the reference runtime with the built-in fixtures
  oe-rt call --address 127.0.0.1:50051 echo hello
  oe-rt conform                           # check the reference runtime
  oe-rt conform ./myruntime -- -c etc/openedge/service.yml`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable, so that an unknown command reaches Args (cobra would
		// print the help and exit 0 otherwise).
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(c, args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	// --version has no -v: -v is --verbose wherever a command has it.
	root.Flags().Bool("version", false, "print the version of oe-rt")
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(flagError)

	root.AddCommand(
		newServeCmd(e),
		newCallCmd(e, nil),
		newConformCmd(e, nil),
		newBenchCmd(e, nil),
		newNewCmd(e, nil),
		newVersionCmd(e),
	)
	completeServe(root)
	root.SetHelpCommand(newHelpCmd(root))
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		// cobra's completion command has no Run: "completion bogus" would
		// print the help and exit 0.
		c.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown shell %q: want one of %s\nRun '%s --help' for usage.", args[0], strings.Join(subcommandNames(c), ", "), c.CommandPath())
			}
			return nil
		}
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	typeArgErrors(root)
	return root
}

// flagError turns pflag's errors (unknown flag, bad value, missing value)
// into usage errors.
func flagError(c *cobra.Command, err error) error {
	return usageError("%w\nRun '%s --help' for usage.", err, c.CommandPath())
}

func unknownCommand(c *cobra.Command, arg string) error {
	hint := ""
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		hint = "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError("unknown command %q for %q%s\nRun '%s --help' for usage.", arg, c.CommandPath(), hint, c.CommandPath())
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// typeArgErrors makes the errors of every command's argument validator
// usage errors (cobra's validators return plain errors).
func typeArgErrors(c *cobra.Command) {
	if v := c.Args; v != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			err := v(c, args)
			if err == nil {
				return nil
			}
			if _, ok := err.(*ExitError); ok {
				return err
			}
			return usageError("%w\nRun '%s --help' for usage.", err, c.CommandPath())
		}
	}
	for _, s := range c.Commands() {
		typeArgErrors(s)
	}
}

// newHelpCmd is "oe-rt help [command]": an unknown topic is a usage error.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range root.Commands() {
				if s.IsAvailableCommand() {
					out = append(out, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usageError("unknown help topic %q\nRun 'oe-rt --help' for the commands.", strings.Join(args, " "))
			}
			return c.Help()
		},
	}
}

// Main runs the command line and returns the exit code. It is the only
// place that installs the signal handler and turns errors into exit codes
// (through exitCode).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2) // room for the second, which ends oe-rt at once
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			cancel(&interruptedError{sig: s})
		case <-ctx.Done():
			return
		}
		// The first signal asks the command to wind down (conform ends its
		// runtimes within 2 s and writes what it has); a second one ends
		// oe-rt at once. What it started dies with it: the runtime by its
		// parent-death signal, the rest by the launcher's guard.
		if s, ok := <-sigs; ok {
			fmt.Fprintf(stderr, "oe-rt: %s again: exiting at once\n", &interruptedError{sig: s})
			os.Exit(ExitInterrupted)
		}
	}()
	root := NewRootCmd(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		plainUsages(root)
	}
	root.SetArgs(args)
	code, msg := exitCode(ctx, root.ExecuteContext(ctx))
	if msg != "" {
		fmt.Fprintln(stderr, "oe-rt:", msg)
	}
	return code
}

// plainUsages strips the backquotes that name a flag's value in --help
// (pflag shows `file` as the value's name): shell completion shows usages
// as they are written.
func plainUsages(c *cobra.Command) {
	strip := func(f *pflag.Flag) { f.Usage = strings.ReplaceAll(f.Usage, "`", "") }
	c.Flags().VisitAll(strip)
	c.PersistentFlags().VisitAll(strip)
	for _, s := range c.Commands() {
		plainUsages(s)
	}
}
