package conformance_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
)

// A runtime that breaks echo.json every other run (it counts its runs in a
// file) is flaky with rate 0.5: a flaky MUST fails the run. Each run starts
// fresh instances.
func TestRepeatFindsFlakyCheck(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "runs")
	var summaries []conformance.RunSummary
	rep := run(t, "alternate", func(c *conformance.Config) {
		c.Env = append(c.Env, "OE_RT_FAKE_FILE="+counter)
		c.Run = []string{"echo.json", "echo.bytes"}
		c.Repeat = 4
		c.OnRun = func(s conformance.RunSummary) { summaries = append(summaries, s) }
	})
	b, err := os.ReadFile(counter)
	require.NoError(t, err)
	assert.Equal(t, "4", string(b), "4 runs, 4 main instances")

	j := result(t, rep, "echo.json")
	assert.Equal(t, 4, j.Runs)
	assert.Equal(t, 2, j.Failures)
	assert.Equal(t, conformance.Flaky, j.Stability)
	assert.InDelta(t, 0.5, j.FlakeRate, 1e-9)
	assert.Equal(t, conformance.Fail, j.Status, "a flaky MUST fails")
	assert.Contains(t, j.Message, "flaky: failed 2 of 4 runs (rate 0.50); run 3: the JSON came back as a different value")
	assert.Equal(t, 3, j.Run)

	by := result(t, rep, "echo.bytes")
	assert.Equal(t, conformance.StablePass, by.Stability)
	assert.Equal(t, conformance.Pass, by.Status)
	assert.Equal(t, 4, by.Runs)
	assert.Zero(t, by.Failures)

	assert.Equal(t, conformance.Failed, rep.Verdict)
	assert.Contains(t, rep.Reason, "echo.json (flaky: failed 2 of 4 runs)")
	assert.Equal(t, 4, rep.Repeat)
	require.Len(t, rep.Runs, 4)
	require.Len(t, summaries, 4)
	for i, s := range rep.Runs {
		want := conformance.Passed
		if i%2 == 0 {
			want = conformance.Failed
		}
		assert.Equal(t, want, s.Verdict, "run %d", i+1)
	}
	pids := map[int]bool{}
	for _, in := range rep.Instances {
		assert.NotZero(t, in.Run)
		pids[in.Pid] = true
	}
	assert.Len(t, pids, len(rep.Instances), "every run starts fresh instances")
	assert.GreaterOrEqual(t, len(rep.Instances), 4)

	var out bytes.Buffer
	require.NoError(t, printer.JSON(&out, rep))
	var raw struct {
		Checks []map[string]any `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &raw))
	for _, c := range raw.Checks {
		if c["id"] == "echo.json" {
			assert.Equal(t, 4.0, c["runs"])
			assert.Equal(t, 2.0, c["failures"])
			assert.Equal(t, "flaky", c["stability"])
			assert.Equal(t, 0.5, c["flake_rate"])
		}
	}
	out.Reset()
	require.NoError(t, printer.Text{}.Write(&out, rep))
	assert.Contains(t, out.String(), "over 4 runs")
	assert.Contains(t, out.String(), "run 4:    PASSED")
}

// A flaky SHOULD warns: the run passes, unless --strict.
func TestRepeatFlakyShouldWarns(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "runs")
	rep := run(t, "alternate", func(c *conformance.Config) {
		c.Env = append(c.Env, "OE_RT_FAKE_FILE="+counter)
		c.Run = []string{"echo.empty", "echo.bytes"}
		c.Repeat = 2
	})
	e := result(t, rep, "echo.empty")
	assert.Equal(t, conformance.Warn, e.Status)
	assert.Equal(t, conformance.Flaky, e.Stability)
	assert.Equal(t, conformance.Passed, rep.Verdict)
	b, _ := os.ReadFile(counter)
	n, _ := strconv.Atoi(string(b))
	assert.Equal(t, 2, n)
}
