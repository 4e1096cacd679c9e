package printer

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// report builds a report by hand: no runtime is needed to test printers.
func report(strict bool) *conformance.Report {
	code := 0
	ready := 42.0
	rep := &conformance.Report{
		Started: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), Duration: 1200 * time.Millisecond, WallMS: 1200,
		Strict: strict,
		Runtime: conformance.Runtime{Command: []string{"./bin/rt", "-c", "x.yml"}, Profile: "openedge", Service: "openedge.Function",
			Address: "127.0.0.1:5000", ExitStatus: &code, Exit: "exit status 0", ReadyMS: &ready, PeakRSS: 30 << 20, PeakThreads: 9,
			StartByHand: "OPENEDGE_SERVICE_ADDRESS=127.0.0.1:50051 ./bin/rt -c x.yml"},
		Checks: []conformance.Result{
			{ID: "start.listen", Level: conformance.MUST, Status: conformance.Pass, Message: "answered", Duration: time.Millisecond},
			{ID: "echo.bytes", Level: conformance.MUST, Status: conformance.Fail, Message: "came back different <&>",
				Repro: "oe-rt call --address 127.0.0.1:50051 echo x", Output: []conformance.OutputLine{{Instance: 1, Stream: "stderr", Text: "Traceback: boom \x1b[2J"}},
				Hint: "Pass bytes as they are.\nPython: no .decode()."},
			{ID: "echo.empty", Level: conformance.SHOULD, Status: conformance.Warn, Message: "returned null"},
			{ID: "call.concurrent", Level: conformance.SHOULD, Status: conformance.Skip, Message: "not run: no sleep fixture"},
		},
	}
	rep.Finish(false)
	return rep
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Text{}.Write(&b, report(false)))
	out := b.String()
	assert.Contains(t, out, "FAIL  echo.bytes")
	assert.Contains(t, out, "WARN  echo.empty")
	assert.Contains(t, out, "SKIP  call.concurrent")
	assert.Contains(t, out, "reproduce: oe-rt call --address 127.0.0.1:50051 echo x")
	assert.Contains(t, out, "#1 stderr | Traceback: boom \\x1b[2J", "the runtime's escape sequences are shown, not sent")
	assert.Contains(t, out, "FAILED: 1 passed, 1 failed, 1 warnings, 1 not run")
	assert.Contains(t, out, "start it by hand for the reproduce lines:\n  OPENEDGE_SERVICE_ADDRESS=127.0.0.1:50051")
	assert.NotContains(t, out, "\x1b[", "no colour unless asked")
	assert.Contains(t, out, "      how to fix: Pass bytes as they are.\n                  Python: no .decode().\n                  (oe-rt conform --explain echo.bytes)\n")

	b.Reset()
	require.NoError(t, Text{Color: true}.Write(&b, report(false)))
	assert.Contains(t, b.String(), "\x1b[31;1mFAIL\x1b[0m")
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, JSON(&b, report(false)))
	var got map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	checks := got["checks"].([]any)
	require.Len(t, checks, 4)
	first := checks[0].(map[string]any)
	for _, k := range []string{"id", "level", "status", "message", "duration_ms"} {
		assert.Contains(t, first, k)
	}
	rt := got["runtime"].(map[string]any)
	for _, k := range []string{"command", "exit_status", "ready_ms", "peak_rss_bytes", "peak_threads"} {
		assert.Contains(t, rt, k)
	}
	assert.Equal(t, "fail", checks[1].(map[string]any)["status"])
	assert.Equal(t, "Pass bytes as they are.\nPython: no .decode().", checks[1].(map[string]any)["hint"])
	assert.NotContains(t, first, "hint", "a pass carries no hint")
}

type suites struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suite    []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnitParsesBack(t *testing.T) {
	for _, strict := range []bool{false, true} {
		var b bytes.Buffer
		require.NoError(t, JUnit(&b, report(strict)))
		var s suites
		require.NoError(t, xml.Unmarshal(b.Bytes(), &s), b.String())
		assert.Equal(t, 4, s.Tests)
		wantFailures, wantSkipped := 1, 1
		if strict {
			// a failed SHOULD and a SHOULD that did not run fail in strict mode
			wantFailures, wantSkipped = 3, 0
		}
		assert.Equal(t, wantFailures, s.Failures)
		assert.Equal(t, wantSkipped, s.Skipped)
		c := s.Suite[0].Cases[1]
		assert.Equal(t, "echo.bytes", c.Name)
		require.NotNil(t, c.Failure)
		assert.Equal(t, "came back different <&>", c.Failure.Message)
		assert.True(t, strings.Contains(c.Failure.Body, "reproduce: oe-rt call"))
		assert.Contains(t, c.Failure.Body, "how to fix (oe-rt conform --explain echo.bytes):\nPass bytes as they are.")
		assert.NotContains(t, b.String(), "\x1b", "no control character reaches the XML")
		if !strict {
			assert.NotNil(t, s.Suite[0].Cases[3].Skipped)
		}
	}
}

// The verdict rules: a MUST that did not run fails the run; a check conform
// could not run makes it an error; an interrupted run is never passed.
func TestFinishVerdicts(t *testing.T) {
	mk := func(rs ...conformance.Result) *conformance.Report {
		return &conformance.Report{Checks: rs}
	}
	must := func(id string, s conformance.Status) conformance.Result {
		return conformance.Result{ID: id, Level: conformance.MUST, Status: s, Message: "m"}
	}
	should := func(id string, s conformance.Status) conformance.Result {
		return conformance.Result{ID: id, Level: conformance.SHOULD, Status: s, Message: "m"}
	}
	cases := []struct {
		name        string
		rep         *conformance.Report
		strict      bool
		interrupted bool
		want        conformance.Verdict
	}{
		{"all pass", mk(must("echo.json", conformance.Pass)), false, false, conformance.Passed},
		{"MUST not run", mk(must("echo.json", conformance.Pass), must("call.fields", conformance.Skip)), false, false, conformance.Failed},
		{"SHOULD not run", mk(must("echo.json", conformance.Pass), should("echo.empty", conformance.Skip)), false, false, conformance.Passed},
		{"SHOULD not run, strict", mk(must("echo.json", conformance.Pass), should("echo.empty", conformance.Skip)), true, false, conformance.Failed},
		{"harness error", mk(must("echo.json", conformance.Pass), must("shutdown.drain", conformance.Error)), false, false, conformance.Errored},
		{"failure beats harness error", mk(must("echo.json", conformance.Fail), must("shutdown.drain", conformance.Error)), false, false, conformance.Failed},
		{"interrupted", mk(must("echo.json", conformance.Pass)), false, true, conformance.Interrupted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.rep.Strict = c.strict
			c.rep.Finish(c.interrupted)
			assert.Equal(t, c.want, c.rep.Verdict)
			assert.Equal(t, c.want == conformance.Passed, c.rep.Passed)
			if c.want != conformance.Passed {
				assert.NotEmpty(t, c.rep.Reason)
			}
			var text bytes.Buffer
			require.NoError(t, Text{}.Write(&text, c.rep))
			if c.want != conformance.Passed {
				assert.NotContains(t, text.String(), "PASSED")
			}
		})
	}
}

func TestEscape(t *testing.T) {
	assert.Equal(t, `a\x1b[2Jb\x0d\x08`, Escape("a\x1b[2Jb\r\b"))
	assert.Equal(t, "tab\tok ✓", Escape("tab\tok ✓"))
	assert.Equal(t, `\xff`, Escape("\xff"))
	assert.Equal(t, `\u202e`, Escape("\u202e"))
}

// The summary and JUnit say which resource mode ran, with the figures the
// checks read; a measured figure from few samples says so.
func TestResourcesLine(t *testing.T) {
	rep := report(false)
	rep.Resources = &conformance.Resources{Mode: "measured", MemoryLimit: 50 << 20, ThreadLimit: 20,
		Memory: 12 << 20, MemoryInstance: 1, Threads: 8, ThreadsInstance: 1, Samples: 3, FewSamples: true}
	var b bytes.Buffer
	require.NoError(t, Text{}.Write(&b, rep))
	assert.Contains(t, b.String(), "memory:   measured, not enforced: peak unreclaimable (RssAnon + RssShmem) 12.0 MiB of 50 MiB (instance #1), peak 8 threads of 20, from only 3 samples\n")

	rep.Resources = &conformance.Resources{Mode: "enforced", Cgroup: "cgroup v1", MemoryFile: "memory.limit_in_bytes", MemoryLimit: 50 << 20, ThreadLimit: 20,
		Memory: 21 << 20, MemoryInstance: 3, TasksPeak: 9, Load: &conformance.LoadFigures{Instance: 3, Calls: 24, Answered: 24, LargestBytes: 4<<20 - 64<<10}}
	b.Reset()
	require.NoError(t, Text{}.Write(&b, rep))
	assert.Contains(t, b.String(), "limits:   enforced by cgroup v1, a cgroup per instance (memory.limit_in_bytes 50 MiB, pids.max 20): cgroup peak 21.0 MiB (instance #3), the function manager's load on #3: 24 calls one at a time, payloads up to 3.9 MiB; at most 9 tasks\n")
	b.Reset()
	require.NoError(t, JUnit(&b, rep))
	assert.Contains(t, b.String(), `<property name="resources" value="enforced"></property>`)
	assert.Contains(t, b.String(), "limits:   enforced by cgroup v1")
	b.Reset()
	require.NoError(t, JSON(&b, rep))
	assert.Contains(t, b.String(), `"mode": "enforced"`)
}

// The summary shows the machine's figures, the runs of a repeated suite,
// and both verdicts of a run judged against a baseline, none of them
// starting a line with a verdict word but the raw verdict.
func TestTextCalibrationRepeatBaseline(t *testing.T) {
	rep := report(false)
	ready, conc, wait := 12.0, 503.0, 1580.0
	rep.Calibration = &conformance.Calibration{ReferenceReadyMS: &ready, ReferenceConcurrentMS: &conc, StartCPUWaitMS: &wait}
	rep.Repeat = 2
	rep.Runs = []conformance.RunSummary{{N: 1, Verdict: conformance.Failed, Reason: "failed: echo.bytes", WallMS: 1200}, {N: 2, Verdict: conformance.Passed, WallMS: 1100}}
	rep.Baseline = &conformance.BaselineReport{File: "b.json", CatalogVersion: 1, Verdict: conformance.Passed, Reason: "no regression; 1 known failure: echo.bytes", Known: []string{"echo.bytes"}}
	var b bytes.Buffer
	require.NoError(t, Text{}.Write(&b, rep))
	out := b.String()
	assert.Contains(t, out, "machine:  the reference (a bare gRPC server) started in 12 ms, its 4 parallel 500 ms sleeps took 503 ms; the runtime waited for a CPU 1580 ms starting\n")
	assert.Contains(t, out, "run 1:    FAILED in 1.20s: failed: echo.bytes\n")
	assert.Contains(t, out, "over 2 runs")
	assert.Contains(t, out, "(the raw verdict; against the baseline below)")
	assert.Contains(t, out, "baseline: b.json (catalog version 1)\n  known failures: echo.bytes\n")
	assert.Contains(t, out, "against the baseline: PASSED: no regression; 1 known failure: echo.bytes\n")
	assert.NotRegexp(t, `(?m)^PASSED`, out, "the raw verdict is FAILED: no line starts with PASSED")
	b.Reset()
	require.NoError(t, JUnit(&b, rep))
	assert.Contains(t, b.String(), `name="baseline_verdict" value="passed"`)
	assert.Contains(t, b.String(), `name="machine" value="the reference (a bare gRPC server) started in 12 ms`)
}

// TestTextWraps: with a terminal's width a long message wraps onto lines
// indented under it, at spaces, and nothing of it is dropped; without one
// it stays on one line, whole.
func TestTextWraps(t *testing.T) {
	rep := report(false)
	long := strings.Repeat("the runtime wrote a cause that is long ", 12) + strings.Repeat("x", 120)
	rep.Checks[1].Message = long
	rep.SameCause = []conformance.SameCause{{Error: strings.Repeat("TypeError: bytes ", 10), Checks: []string{"echo.bytes", "echo.json"}}}
	var one, wrapped bytes.Buffer
	require.NoError(t, Text{}.Write(&one, rep))
	assert.Contains(t, one.String(), long+"\n", "no width: one line, whole")
	require.NoError(t, Text{Width: 100}.Write(&wrapped, rep))
	lines := strings.Split(wrapped.String(), "\n")
	var msg []string
	for i, l := range lines {
		if strings.HasPrefix(l, "FAIL  echo.bytes") {
			col := strings.Index(l, "the runtime")
			msg = append(msg, l[col:])
			for _, c := range lines[i+1:] {
				if !strings.HasPrefix(c, strings.Repeat(" ", col)) || strings.TrimSpace(c) == "" || strings.HasPrefix(strings.TrimSpace(c), "reproduce:") {
					break
				}
				msg = append(msg, c[col:])
			}
		}
	}
	require.Greater(t, len(msg), 3, "%s", wrapped.String())
	assert.Equal(t, long, strings.Join(msg, " "), "the whole message, in order")
	for _, l := range lines {
		if !strings.Contains(l, "xxxx") {
			assert.LessOrEqual(t, len([]rune(l)), 100, "%q", l)
		}
	}
	assert.Regexp(t, `(?m)^cause:    2 checks failed with the same error: .*\n {10}\S`, wrapped.String())
}

// TestSeedPrinted: the sweep's seed is in every format, to replay it.
func TestSeedPrinted(t *testing.T) {
	rep := report(false)
	rep.Seed = 4242
	var text, junit, js bytes.Buffer
	require.NoError(t, Text{}.Write(&text, rep))
	assert.Contains(t, text.String(), "seed:     4242 (--seed 4242 sends the same sweep again)\n")
	require.NoError(t, JUnit(&junit, rep))
	assert.Contains(t, junit.String(), `<property name="seed" value="4242">`)
	require.NoError(t, JSON(&js, rep))
	assert.Contains(t, js.String(), `"seed": 4242`)
}
