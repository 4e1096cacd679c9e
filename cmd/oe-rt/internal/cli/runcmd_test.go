package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/scaffold"
)

// The one exit-code table maps the libraries' typed errors and conform's
// verdicts, wrapped or not.
func TestExitCodeTable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"conformance config", fmt.Errorf("conform: %w", &conformance.ConfigError{Err: errors.New("bad")}), ExitUsage, "conform: bad"},
		{"bench config", &bench.ConfigError{Err: errors.New("bad")}, ExitUsage, "bad"},
		{"bench start", &bench.StartError{Err: errors.New("no")}, ExitUsage, "start runtime: no"},
		{"scaffold option", &scaffold.OptionError{Err: errors.New("bad name")}, ExitUsage, "bad name"},
		{"failed", &verdictError{gate: conformance.Failed}, ExitFailure, ""},
		{"interrupted", &verdictError{gate: conformance.Interrupted}, ExitInterrupted, ""},
		{"errored", &verdictError{gate: conformance.Errored, reason: "r"}, ExitUsage, "conform could not run every check: r"},
		{"plain", errors.New("boom"), ExitFailure, "boom"},
		{"usage", usageError("u"), ExitUsage, "u"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := exitCode(ctx, tc.err)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.msg, msg)
		})
	}
	ctx, cancel := context.WithCancelCause(ctx)
	cancel(errors.New("stopped"))
	code, msg := exitCode(ctx, &verdictError{gate: conformance.Interrupted})
	assert.Equal(t, ExitInterrupted, code)
	assert.Equal(t, "stopped", msg, "an interrupted run says why")
}

// A field the library refused is reported under its flag, as the user
// wrote it; a field with no flag, or an error of no field, stays as the
// library said it.
func TestFlagOf(t *testing.T) {
	fs := newBenchCmd(&env{}, nil).Flags()
	err := flagOf(fs, benchFlags, fmt.Errorf("bench: %w", &bench.ConfigError{Field: "Concurrency", Problem: "must be at least 1, got 0", Err: errors.New("x")}))
	code, msg := exitCode(context.Background(), err)
	assert.Equal(t, ExitUsage, code)
	assert.Equal(t, "-c/--concurrency must be at least 1, got 0", msg)

	fs = newConformCmd(&env{}, nil).Flags()
	err = flagOf(fs, conformFlags, &conformance.ConfigError{Field: "StartTimeout", Problem: "must be positive, got 0s", Err: errors.New("x")})
	assert.EqualError(t, err, "--start-timeout must be positive, got 0s")

	other := &conformance.ConfigError{Field: "MaxMessageSize", Problem: "p", Err: errors.New("lib")}
	assert.Same(t, error(other), flagOf(fs, conformFlags, other))
	plain := errors.New("plain")
	assert.Same(t, plain, flagOf(fs, conformFlags, plain))
	assert.NoError(t, flagOf(fs, conformFlags, nil))
}

// A configuration the library refuses is refused before anything is
// written: no report file, no output.
func TestRefusedConfigWritesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"conform", "--start-timeout", "0s", "--junit", filepath.Join(dir, "j.xml")}, "--start-timeout must be positive, got 0s"},
		{[]string{"conform", "--limit-threads", "0", "--json", filepath.Join(dir, "j.json")}, "--limit-threads must be at least 1, got 0"},
		{[]string{"conform", "--function", "bogus=x", "--function", "echo=e"}, `--function "bogus=x": unknown role "bogus": want one of echo, context, none, fail, sleep`},
		{[]string{"conform", "--skip", "nope"}, `--skip "nope": no check matches (see oe-rt conform --list)`},
		{[]string{"bench", "--address", "127.0.0.1:1", "-c", "0"}, "-c/--concurrency must be at least 1, got 0"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--function", ""}, "--function must not be empty"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--connections", "0"}, "--connections must be at least 1, got 0"},
	} {
		report := filepath.Join(dir, "report")
		args := append(append([]string{}, tc.args...), "-o", report)
		code, stdout, stderr := runMain(args...)
		assert.Equal(t, ExitUsage, code, "%v: %s", args, stderr)
		assert.Equal(t, "oe-rt: "+tc.want+"\n", stderr, "%v", args)
		assert.Empty(t, stdout)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries, "%v wrote a file", args)
	}
}
