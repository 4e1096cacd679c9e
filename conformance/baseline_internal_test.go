package conformance

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A check the catalog added after the baseline's version is new to it: a
// new MUST that fails fails the gate; a new SHOULD that fails warns; a
// check retired since is ignored, and says so.
func TestBaselineNewChecks(t *testing.T) {
	saved := catalogHistory
	defer func() { catalogHistory = saved }()
	var v1 []string
	for _, id := range saved[0].added {
		if id != "echo.json" && id != "echo.empty" {
			v1 = append(v1, id)
		}
	}
	catalogHistory = []catalogRelease{{added: v1}, {added: []string{"echo.json", "echo.empty"}, retired: []string{"echo.gone"}}}
	b, err := ParseBaseline(strings.NewReader(`{"catalog_version":1,"checks":[
		{"id":"echo.bytes","status":"pass"},{"id":"echo.gone","status":"fail"}]}`), "b.json")
	require.NoError(t, err)
	mk := func(status Status, level Level, id string) Result {
		return Result{ID: id, Level: level, Status: status, Message: "m"}
	}
	rep := &Report{Checks: []Result{mk(Pass, MUST, "echo.bytes"), mk(Fail, MUST, "echo.json"), mk(Warn, SHOULD, "echo.empty")}}
	rep.Finish(false)
	rep.applyBaseline(b, false)
	assert.Equal(t, []string{"echo.json", "echo.empty"}, rep.Baseline.New)
	assert.Equal(t, Failed, rep.Baseline.Verdict)
	assert.Equal(t, "failed: echo.json (new since the baseline)", rep.Baseline.Reason)
	assert.Contains(t, rep.Checks[1].BaselineNote, "new: catalog version 2 added echo.json after the baseline's (1)")
	assert.Equal(t, []string{"echo.gone: retired in catalog version 2"}, rep.Baseline.Ignored)

	// Only the new SHOULD fails: a warning, not a failure of the gate.
	rep = &Report{Checks: []Result{mk(Pass, MUST, "echo.bytes"), mk(Pass, MUST, "echo.json"), mk(Warn, SHOULD, "echo.empty")}}
	rep.Finish(false)
	rep.applyBaseline(b, false)
	assert.Equal(t, Passed, rep.Baseline.Verdict)
	rep.Strict = true
	rep.applyBaseline(b, false)
	assert.Equal(t, Failed, rep.Baseline.Verdict, "with --strict a new SHOULD that warns fails")
}

// An interrupted run is interrupted against any baseline.
func TestBaselineInterrupted(t *testing.T) {
	b, err := ParseBaseline(strings.NewReader(`{"checks":[{"id":"echo.json","status":"fail"}]}`), "b.json")
	require.NoError(t, err)
	rep := &Report{Checks: []Result{{ID: "echo.json", Level: MUST, Status: Fail}}}
	rep.Finish(true)
	rep.applyBaseline(b, true)
	assert.Equal(t, Interrupted, rep.Baseline.Verdict)
	assert.Equal(t, Interrupted, rep.Gate())
}
