package conformance_test

// Every answer is judged: a runtime that breaks a rule only on calls that
// no check judges by itself — another fixture's fields, a text payload of
// a probe, the load's short sleeps — fails the check that owns the rule,
// and the message names the call. (Not parallel: each run asserts that no
// process of the test outlived it.)

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
)

// TestOraclesJudgeEveryAnswer: one run of the "quiet-liar" runtime, which
// answers none with a fresh message, echoes UTF-8 text as a JSON string
// and answers the function manager's load's sleeps at once. Each
// check owning the broken rule fails and names the call; the checks whose
// own calls were answered right still pass their own rule.
func TestOraclesJudgeEveryAnswer(t *testing.T) {
	rep := run(t, "quiet-liar", func(c *conformance.Config) {
		c.Strict = true
		c.Run = []string{"call.fields", "none.empty", "echo.bytes", "call.unknown-function", "call.concurrent", "resources.memory"}
	})
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assert.Equal(t, conformance.Failed, rep.Gate(), "conform exits 1")

	fields := result(t, rep, "call.fields")
	assert.Equal(t, conformance.Fail, fields.Status)
	assert.Regexp(t, `^call #\d+ to none on instance #1 \(main\), made by none.empty [\d.]+m?s into the run: the response must be the request with only Payload replaced: `, fields.Message)
	assert.Contains(t, fields.Message, `FunctionName = "", want "none"`, "what was sent against what came back")
	assert.Contains(t, fields.Repro, "oe-rt call --address 127.0.0.1:50051 none")
	assert.Equal(t, conformance.Pass, result(t, rep, "none.empty").Status, "none's own rule held")

	eb := result(t, rep, "echo.bytes")
	assert.Equal(t, conformance.Fail, eb.Status)
	assert.Regexp(t, `call #\d+ to echo on instance #1 \(main\), made by call.unknown-function [\d.]+m?s into the run: an echo must come back as sent: `, eb.Message, "the probe after the unknown function")
	assert.Contains(t, eb.Message, `sent 14 bytes "still serving?", got 16 bytes "\"still serving?\""`)
	assert.Contains(t, eb.Repro, `echo 'still serving?'`, "the reproduce line carries the payload")

	t.Run("the load's sleeps", func(t *testing.T) {
		conc := result(t, rep, "call.concurrent")
		if !strings.Contains(conc.Message, "made by the function manager's load") {
			// conform judges a sleep by its own clock, round trip
			// included: on a machine so loaded that every round trip of
			// the load's sleeps took longer than the sleep asked (100 ms,
			// 10 ms), no sleep answered early can be told.
			t.Skipf("the machine was too slow to tell a sleep answered early (call.concurrent: %s)", conc.Message)
		}
		assert.Equal(t, conformance.Warn, conc.Status)
		assert.Regexp(t, `call #\d+ to sleep on instance #\d+ \(load\), made by the function manager's load [\d.]+m?s into the run: a sleep answered OK must take at least the time asked: sleep (100|10) ms answered OK after [\d.]+m?s`, conc.Message)
	})
}

// TestDrainJudgedByTheCallsClock: a runtime whose sleeps answer OK at
// once when SIGTERM arrives cut the call in flight short: shutdown.drain
// fails, saying how far into its time it returned.
func TestDrainJudgedByTheCallsClock(t *testing.T) {
	rep := run(t, "drain-cut", func(c *conformance.Config) { c.Run = []string{"shutdown.*"} })
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "shutdown.drain")
	require.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Regexp(t, `the 1s sleep in flight when SIGTERM arrived returned OK \d+ms into its time, \d+ms after SIGTERM: cut short`, r.Message)
	assert.Equal(t, conformance.Pass, result(t, rep, "shutdown.sigterm").Status)
}

// TestFirstCallIsTheStart: a runtime that listens at once but answers its
// first call 3 s late fails start.time (a SHOULD: strict fails the run),
// which says so; the check whose call comes next is not blamed.
func TestFirstCallIsTheStart(t *testing.T) {
	rep := run(t, "slow-first-call", func(c *conformance.Config) {
		c.Strict = true
		c.Run = []string{"start.time", "call.unknown-function"}
	})
	assert.Equal(t, conformance.Failed, rep.Verdict)
	st := result(t, rep, "start.time")
	assert.Equal(t, conformance.Warn, st.Status, st.Message)
	assert.Regexp(t, `^accepted its first connection [\d.]+m?s and answered its first call [3-9][\d.]*s after exec`, st.Message)
	u := result(t, rep, "call.unknown-function")
	assert.Equal(t, conformance.Pass, u.Status, "the wait is start.time's: %s", u.Message)
}

// TestLongLife: a runtime whose every call leaves an open file and
// 128 KiB behind, every 5th a zombie, and that fails every call after its
// 300th, fails life.calls ("after 300 OK calls"), fails life.leaks with the
// projections and the zombies named, and warns in life.memory.
func TestLongLife(t *testing.T) {
	rep := run(t, "leaky", func(c *conformance.Config) {
		c.Run = []string{"life.*"}
		c.LifeCalls = 400
	})
	assert.Equal(t, conformance.Failed, rep.Verdict)
	calls := result(t, rep, "life.calls")
	assert.Equal(t, conformance.Fail, calls.Status)
	assert.Regexp(t, `^the first failure came after 300 OK calls: call #\d+ to \w+ on instance #\d+ \(life\), call 301 of the long life: answered INTERNAL: out of handles after 300 calls`, calls.Message)
	assert.NotEmpty(t, calls.Output, "what the runtime wrote around the call")
	leaks := result(t, rep, "life.leaks")
	assert.Equal(t, conformance.Fail, leaks.Status)
	assert.Regexp(t, `(1 fd|1\.\d fds) per call: the [\d,]+ fd limit is reached after about [\d,]+ calls \(fds [\d,]+ → [\d,]+ over 250 calls\)`, leaks.Message)
	assert.Regexp(t, `1 zombie every 5 calls: .* child processes that ended and were never waited for`, leaks.Message)
	mem := result(t, rep, "life.memory")
	assert.Equal(t, conformance.Warn, mem.Status)
	assert.Regexp(t, `unreclaimable memory grew [\d.]+ MiB → [\d.]+ MiB, about [\d.]+ KiB per call: the 50 MiB memory limit is reached after about [\d,]+ calls`, mem.Message)
}

// TestReraisedSigtermAfterDrain: a runtime that drains its call in flight
// and then ends by re-raising SIGTERM with the default action handled the
// signal: shutdown.sigterm and shutdown.drain pass, shutdown.exit-code says
// how it ended.
func TestReraisedSigtermAfterDrain(t *testing.T) {
	rep := run(t, "drain-reraise", func(c *conformance.Config) { c.Run = []string{"shutdown.*"} })
	drain := result(t, rep, "shutdown.drain")
	require.Equal(t, conformance.Pass, drain.Status, drain.Message)
	st := result(t, rep, "shutdown.sigterm")
	assert.Equal(t, conformance.Pass, st.Status, st.Message)
	assert.Contains(t, st.Message, "drained its call in flight, then ended by its own re-raised SIGTERM")
	code := result(t, rep, "shutdown.exit-code")
	assert.Equal(t, conformance.Warn, code.Status)
	assert.Contains(t, code.Message, "terminated by SIGTERM")
	assert.Equal(t, conformance.Passed, rep.Verdict, "a warning only, without --strict")
}

// TestOneCauseSaidOnce: a runtime whose every function fails with the same
// error fails several checks; the report says once that they failed with
// the same error, and the hints of all but the first point to it.
func TestOneCauseSaidOnce(t *testing.T) {
	rep := run(t, "bytes-result", func(c *conformance.Config) {
		c.Run = []string{"echo.json", "echo.bytes", "context.metadata", "none.empty"}
	})
	assert.Equal(t, conformance.Failed, rep.Verdict)
	require.Len(t, rep.SameCause, 1, "one cause")
	c := rep.SameCause[0]
	assert.Equal(t, "UNKNOWN: TypeError: Object of type bytes is not JSON serializable", c.Error)
	assert.Equal(t, []string{"echo.bytes", "echo.json", "context.metadata", "none.empty"}, c.Checks)
	assert.Equal(t, "4 checks failed with the same error: UNKNOWN: TypeError: Object of type bytes is not JSON serializable — see echo.bytes", c.String())
	assert.NotContains(t, result(t, rep, "echo.bytes").Hint, "The same error as")
	assert.Contains(t, result(t, rep, "none.empty").Hint, "The same error as echo.bytes")
	var text bytes.Buffer
	require.NoError(t, printer.Text{}.Write(&text, rep))
	assert.Contains(t, text.String(), "cause:    4 checks failed with the same error: UNKNOWN: TypeError: Object of type bytes is not JSON serializable — see echo.bytes\n")
}

// TestZombiesNamed: a runtime that never waits for its children is not
// told to bound its thread pool: resources.threads says the threads
// counted are zombies.
func TestZombiesNamed(t *testing.T) {
	rep := run(t, "zombie-per-call", func(c *conformance.Config) { c.Run = []string{"resources.threads"} })
	r := result(t, rep, "resources.threads")
	require.Equal(t, conformance.Warn, r.Status, r.Message)
	assert.Regexp(t, `peak \d+ threads .*; \d+ of them are zombies: child processes that ended and were never waited for`, r.Message)
}

// TestAliasExitReported: an alias instance that exits at start is
// reported with its exit status and what it wrote, and its output is shown.
func TestAliasExitReported(t *testing.T) {
	rep := run(t, "only-baetyl-exit", func(c *conformance.Config) {
		c.Profile = conformance.ProfileBaetyl
		c.Run = []string{"start.address-aliases"}
	})
	r := result(t, rep, "start.address-aliases")
	require.Equal(t, conformance.Warn, r.Status, r.Message)
	assert.Regexp(t, `not with OPENEDGE_SERVICE_ADDRESS \(instance #\d with it alone: .*; it ended \(exit status 1\) and wrote "fatal: BAETYL_SERVICE_INSTANCE_ADDRESS is not set"\)`, r.Message)
	var texts []string
	for _, l := range r.Output {
		texts = append(texts, l.Text)
	}
	assert.Contains(t, texts, "fatal: BAETYL_SERVICE_INSTANCE_ADDRESS is not set")
}
