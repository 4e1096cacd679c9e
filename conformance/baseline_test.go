package conformance_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
)

// asBaseline writes a report as JSON and reads it back as a baseline, as
// --update-baseline and --baseline do.
func asBaseline(t *testing.T, rep *conformance.Report) *conformance.Baseline {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, printer.JSON(&b, rep))
	base, err := conformance.ParseBaseline(&b, "conform-baseline.json")
	require.NoError(t, err)
	return base
}

// A team adopts the gate with a runtime that drops calls in flight at
// shutdown: the baseline masks that known failure, and still catches a
// change that breaks something that passed.
func TestBaselineMasksKnownFailureAndCatchesNewOne(t *testing.T) {
	sel := []string{"echo.json", "shutdown.sigterm", "shutdown.drain"}
	day1 := run(t, "drop", func(c *conformance.Config) { c.Run = sel })
	require.Equal(t, conformance.Fail, result(t, day1, "shutdown.drain").Status)
	require.Equal(t, conformance.Failed, day1.Verdict)
	assert.Equal(t, conformance.CatalogVersion, day1.CatalogVersion)
	base := asBaseline(t, day1)
	date := day1.Started.UTC().Format("2006-01-02")

	// The same runtime again: the known failure does not fail the gate,
	// and the raw verdict still says what is true.
	again := run(t, "drop", func(c *conformance.Config) { c.Run = sel; c.Baseline = base })
	assert.Equal(t, conformance.Failed, again.Verdict, "the raw verdict is untouched by the baseline")
	require.NotNil(t, again.Baseline)
	assert.Equal(t, conformance.Passed, again.Baseline.Verdict, again.Baseline.Reason)
	assert.Equal(t, conformance.Passed, again.Gate())
	assert.Equal(t, []string{"shutdown.drain"}, again.Baseline.Known)
	drain := result(t, again, "shutdown.drain")
	assert.Equal(t, conformance.Fail, drain.Status, "a known failure is still a failure")
	assert.Equal(t, conformance.Known, drain.Baseline)
	assert.Equal(t, "known: shutdown.drain, since the baseline of "+date+" (not a regression)", drain.BaselineNote)
	var text, junit bytes.Buffer
	require.NoError(t, printer.Text{}.Write(&text, again))
	assert.Contains(t, text.String(), "FAILED: ")
	assert.Contains(t, text.String(), "(the raw verdict; against the baseline below)")
	assert.Contains(t, text.String(), "      known: shutdown.drain, since the baseline of "+date)
	assert.Contains(t, text.String(), "against the baseline: PASSED: no regression; 1 known failure: shutdown.drain")
	require.NoError(t, printer.JUnit(&junit, again))
	var s struct {
		Failures int `xml:"failures,attr"`
		Suite    []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(junit.Bytes(), &s))
	assert.Equal(t, 0, s.Failures, "CI stays green")
	for _, c := range s.Suite[0].Cases {
		if c.Name == "shutdown.drain" {
			require.NotNil(t, c.Skipped, "a known failure is skipped, with the reason")
			assert.Contains(t, c.Skipped.Message, "known: shutdown.drain, since the baseline of")
		}
	}
	assert.Contains(t, junit.String(), `name="baseline_verdict" value="passed"`)
	assert.Contains(t, junit.String(), `name="verdict" value="failed"`)

	// A change breaks echo.json and fixes the drain: the regression fails
	// the gate, the fix is listed as an improvement.
	worse := run(t, "json", func(c *conformance.Config) { c.Run = sel; c.Baseline = base })
	require.NotNil(t, worse.Baseline)
	assert.Equal(t, conformance.Failed, worse.Baseline.Verdict)
	assert.Equal(t, conformance.Failed, worse.Gate())
	assert.Equal(t, []string{"echo.json"}, worse.Baseline.Regressions)
	assert.Equal(t, []string{"shutdown.drain"}, worse.Baseline.Improvements)
	assert.Contains(t, worse.Baseline.Reason, "failed: echo.json (passed in the baseline)")
	assert.Equal(t, "shutdown.drain now passes: update the baseline (--update-baseline)", result(t, worse, "shutdown.drain").BaselineNote)
	assert.True(t, strings.HasPrefix(result(t, worse, "echo.json").BaselineNote, "regression: echo.json passed in the baseline of"))
}

// A baseline never excuses a check that did not run: a runtime that no
// longer starts fails the gate even where the baseline knew failures.
func TestBaselineNeverExcusesNotRun(t *testing.T) {
	sel := []string{"echo.json", "shutdown.drain"}
	base := asBaseline(t, run(t, "drop", func(c *conformance.Config) { c.Run = sel }))
	rep := run(t, "exit-at-once", func(c *conformance.Config) { c.Run = sel; c.Baseline = base })
	assert.Equal(t, conformance.Skip, result(t, rep, "shutdown.drain").Status)
	assert.Empty(t, result(t, rep, "shutdown.drain").Baseline)
	assert.Equal(t, conformance.Failed, rep.Baseline.Verdict)
	assert.Contains(t, rep.Baseline.Reason, "start.listen")
}

func TestParseBaselineErrors(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"not JSON":     {"PASSED: 25 passed", "not JSON"},
		"a JUnit file": {"<?xml version=\"1.0\"?><testsuites/>", "not JSON"},
		"no checks":    {`{"verdict":"passed"}`, `no "checks"`},
		"empty":        {`{"checks":[]}`, "holds no checks"},
		"bad status":   {`{"checks":[{"id":"echo.json","status":"green"}]}`, `status "green"`},
		"duplicate":    {`{"checks":[{"id":"echo.json","status":"pass"},{"id":"echo.json","status":"fail"}]}`, "twice"},
		"bad version":  {`{"catalog_version":0,"checks":[{"id":"echo.json","status":"pass"}]}`, "catalog_version 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := conformance.ParseBaseline(strings.NewReader(c.in), "b.json")
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "--update-baseline")
		})
	}
	_, err := conformance.ReadBaseline("/no/such/baseline.json")
	assert.ErrorContains(t, err, "no such file")
}

// A report written before reports carried versions is read as catalog
// version 1; checks this catalog does not know are listed as ignored.
func TestOldBaseline(t *testing.T) {
	b, err := conformance.ParseBaseline(strings.NewReader(`{"started":"2026-01-02T03:04:05Z","checks":[
		{"id":"shutdown.drain","status":"fail"},{"id":"old.check","status":"fail"}]}`), "old.json")
	require.NoError(t, err)
	assert.Equal(t, 1, b.CatalogVersion)
	rep := run(t, "drop", func(c *conformance.Config) { c.Run = []string{"shutdown.drain"}; c.Baseline = b })
	assert.Equal(t, conformance.Passed, rep.Baseline.Verdict)
	assert.Equal(t, []string{"old.check: no such check in this catalog"}, rep.Baseline.Ignored)
	assert.Equal(t, "known: shutdown.drain, since the baseline of 2026-01-02 (not a regression)", result(t, rep, "shutdown.drain").BaselineNote)
}
