package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/scaffold"
)

// Exit codes, the same for every command:
//
//	0  the command did what was asked: the call returned OK, every MUST
//	   check passed, every --assert bound held, the server stopped cleanly
//	1  the command ran and found a failure: a failed call, a failed check,
//	   a broken bound, a runtime that could not be reached or that exited
//	2  the command could not do what was asked: bad flags or arguments,
//	   a bad configuration, a runtime that could not be started, a report
//	   that could not be written, or an interruption (SIGINT, SIGTERM)
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitInterrupted is the status of a command stopped by SIGINT or
	// SIGTERM before it could finish: what it did not do is unknown, so it
	// is not a verdict (oe-rt serve, which such a signal stops as asked,
	// exits 0).
	ExitInterrupted = ExitUsage
)

// ExitError carries an exit code with an error. A nil Err prints nothing
// (the command has already said what happened, e.g. in its report).
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

// usageError is a usage or configuration error (exit 2): a bad flag, a bad
// argument, a bad configuration, or something the command needs that is
// not there. Commands return it from their option checks; cobra's own flag
// and argument errors are turned into it where they arise (NewRootCmd).
func usageError(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

// failure is a failure found by a command that ran (exit 1).
func failure(err error) error {
	return &ExitError{Code: ExitFailure, Err: err}
}

// interruptedError is the cause of the command's context when a signal
// stopped it.
type interruptedError struct{ sig os.Signal }

func (e *interruptedError) Error() string {
	name := "SIGINT"
	if e.sig == syscall.SIGTERM {
		name = "SIGTERM"
	}
	return "interrupted by " + name
}

// verdictError is a conform run whose gate is not PASSED: exitCode maps
// the gate to the exit status.
type verdictError struct {
	gate   conformance.Verdict
	reason string // the report's, when the harness could not run a check
}

func (e *verdictError) Error() string {
	if e.gate == conformance.Errored {
		return "conform could not run every check: " + e.reason
	}
	return "conform: " + string(e.gate)
}

// exitCode is oe-rt's one exit-code table: it maps what a command returned,
// and the cause of its context, to the exit status and the message for
// standard error ("" for none). Only typed errors choose a status: an
// *ExitError its own; a library's configuration error
// (conformance.ConfigError, bench.ConfigError, scaffold.OptionError) or a
// runtime bench could not start (bench.StartError) 2; a conform verdict
// (verdictError) FAILED 1, INTERRUPTED and ERROR 2; any other error is a
// failure (1). A command that returns an error after a signal was
// interrupted (2), whatever the error.
func exitCode(ctx context.Context, err error) (int, string) {
	if err == nil {
		return ExitOK, ""
	}
	var ie *interruptedError
	if errors.As(context.Cause(ctx), &ie) {
		return ExitInterrupted, ie.Error()
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err == nil {
			return ee.Code, ""
		}
		return ee.Code, ee.Err.Error()
	}
	var ve *verdictError
	if errors.As(err, &ve) {
		switch ve.gate {
		case conformance.Failed:
			return ExitFailure, "" // the report says why
		case conformance.Interrupted:
			if cause := context.Cause(ctx); cause != nil {
				return ExitInterrupted, cause.Error()
			}
			return ExitInterrupted, ""
		}
		return ExitUsage, ve.Error()
	}
	var cce *conformance.ConfigError
	var bce *bench.ConfigError
	var bse *bench.StartError
	var soe *scaffold.OptionError
	if errors.As(err, &cce) || errors.As(err, &bce) || errors.As(err, &bse) || errors.As(err, &soe) {
		return ExitUsage, err.Error()
	}
	return ExitFailure, err.Error()
}
