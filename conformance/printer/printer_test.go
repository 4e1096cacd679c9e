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
	return &conformance.Report{
		Started: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), Duration: 1200 * time.Millisecond, WallMS: 1200,
		Strict: strict, Passed: false,
		Runtime: conformance.Runtime{Command: []string{"./bin/rt", "-c", "x.yml"}, Profile: "openedge", Service: "openedge.Function",
			Address: "127.0.0.1:5000", ExitStatus: &code, Exit: "exit status 0", ReadyMS: 42, PeakRSS: 30 << 20, PeakThreads: 9},
		Checks: []conformance.Result{
			{ID: "start.listen", Level: conformance.MUST, Status: conformance.Pass, Message: "answered", Duration: time.Millisecond},
			{ID: "echo.bytes", Level: conformance.MUST, Status: conformance.Fail, Message: "came back different <&>",
				Repro: "oe-rt call --address 127.0.0.1:5000 echo x", StderrTail: "Traceback: boom"},
			{ID: "echo.empty", Level: conformance.SHOULD, Status: conformance.Warn, Message: "returned null"},
			{ID: "call.concurrent", Level: conformance.SHOULD, Status: conformance.Skip, Message: "no sleep fixture"},
		},
		Counts: conformance.Counts{Pass: 1, Fail: 1, Warn: 1, Skip: 1},
	}
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Text{}.Write(&b, report(false)))
	out := b.String()
	assert.Contains(t, out, "FAIL  echo.bytes")
	assert.Contains(t, out, "WARN  echo.empty")
	assert.Contains(t, out, "SKIP  call.concurrent")
	assert.Contains(t, out, "reproduce: oe-rt call --address 127.0.0.1:5000 echo x")
	assert.Contains(t, out, "| Traceback: boom")
	assert.Contains(t, out, "FAILED: 1 passed, 1 failed, 1 warnings, 1 skipped")
	assert.NotContains(t, out, "\x1b[", "no colour unless asked")

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
		assert.Equal(t, 1, s.Skipped)
		wantFailures := 1
		if strict {
			wantFailures = 2 // a failed SHOULD fails in strict mode
		}
		assert.Equal(t, wantFailures, s.Failures)
		c := s.Suite[0].Cases[1]
		assert.Equal(t, "echo.bytes", c.Name)
		require.NotNil(t, c.Failure)
		assert.Equal(t, "came back different <&>", c.Failure.Message)
		assert.True(t, strings.Contains(c.Failure.Body, "reproduce: oe-rt call"))
		assert.NotNil(t, s.Suite[0].Cases[3].Skipped)
	}
}
