package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/conformance"
)

// options is a command's flags and arguments. check checks what is about
// the command line itself (a flag's syntax, flags that exclude each other,
// the arguments) and fills what the arguments give; the rules about values
// belong to the library's Config.Validate.
type options interface {
	check(cmd *cobra.Command, args []string) error
}

// runE is the RunE of every command with options: check the command line,
// run (runF when a test gives one, else run: build the library's
// configuration, call the library, print), and name the flag of a field
// the library's configuration refused (flags maps a Config field to its
// flag). Main maps what it returns to the exit status (exitCode).
func runE[O options](o O, runF, run func(context.Context, O) error, flags map[string]string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.check(cmd, args); err != nil {
			return err
		}
		if runF == nil {
			runF = run
		}
		return flagOf(cmd.Flags(), flags, runF(cmd.Context(), o))
	}
}

// flagOf turns a library's configuration error about one field into a
// usage error that names the field's flag, as the user gave it:
// "--start-timeout must be positive, got 0s". Other errors are returned as
// they are.
func flagOf(fs *pflag.FlagSet, flags map[string]string, err error) error {
	var field, problem string
	var ce *conformance.ConfigError
	var be *bench.ConfigError
	switch {
	case errors.As(err, &ce):
		field, problem = ce.Field, ce.Problem
	case errors.As(err, &be):
		field, problem = be.Field, be.Problem
	}
	if name, ok := flags[field]; ok && field != "" && problem != "" {
		for f, n := range flags {
			problem = strings.ReplaceAll(problem, "{"+f+"}", flagName(fs, n))
		}
		return usageError("%s %s", flagName(fs, name), problem)
	}
	return err
}
