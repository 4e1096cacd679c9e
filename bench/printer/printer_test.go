package printer_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/bench/printer"
	"github.com/oe-rt/oe-rt/internal/launch"
)

func report() *bench.Report {
	return &bench.Report{
		Target: "127.0.0.1:50051", Method: "/openedge.Function/Call", Function: "echo",
		Concurrency: 8, Connections: 1, Total: 1000,
		Result: bench.Result{
			Payload: "1k", PayloadBytes: 1024,
			Requests: 1000, OK: 990, Errors: 10,
			ErrorCodes:   map[string]int64{"UNKNOWN": 7, "DEADLINE_EXCEEDED": 3},
			ErrorSamples: map[string]string{"UNKNOWN": "conformance failure", "DEADLINE_EXCEEDED": "context deadline exceeded"},
			Elapsed:      500 * time.Millisecond, RPS: 2000,
			Latency: bench.Latency{Min: 80 * time.Microsecond, Mean: 900 * time.Microsecond, P50: 850 * time.Microsecond,
				P90: 1200 * time.Microsecond, P99: 4321 * time.Microsecond, P999: 12 * time.Millisecond, Max: 15 * time.Millisecond},
			Histogram: []bench.Bucket{{UpTo: time.Millisecond, Count: 600}, {UpTo: 15 * time.Millisecond, Count: 390}},
		},
		Runtime: &bench.RuntimeReport{Startup: 42 * time.Millisecond, Usage: launch.Usage{PeakRSS: 15 << 20, PeakThreads: 9, Samples: 5}},
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, printer.JSON(&buf, report()))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.Equal(t, 1000.0, got["requests"])
	assert.Equal(t, 10.0, got["errors"])
	assert.Equal(t, 2000.0, got["rps"])
	assert.Equal(t, map[string]any{"UNKNOWN": 7.0, "DEADLINE_EXCEEDED": 3.0}, got["error_codes"])
	assert.Equal(t, map[string]any{"min": 0.08, "mean": 0.9, "p50": 0.85, "p90": 1.2, "p99": 4.321, "p999": 12.0, "max": 15.0}, got["latency_ms"])
	assert.Equal(t, map[string]any{"startup_ms": 42.0, "peak_rss_bytes": float64(15 << 20), "peak_rss_mib": 15.0, "peak_threads": 9.0, "samples": 5.0}, got["runtime"])
	assert.Equal(t, 0.5, got["elapsed_s"])
	assert.Equal(t, "1k", got["payload"])
	assert.Equal(t, 1024.0, got["payload_bytes"])
	assert.Equal(t, 1000.0, got["total"])
	assert.Contains(t, got, "sweep")
	assert.Nil(t, got["sweep"], "no sweep: null")

	// Without a started runtime the runtime object is null.
	rep := report()
	rep.Runtime = nil
	buf.Reset()
	require.NoError(t, printer.JSON(&buf, rep))
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.Contains(t, got, "runtime")
	assert.Nil(t, got["runtime"])
}

// Every field is there whatever the run: a report with no successful call,
// no target rate, no duration and the empty payload still has them, as
// null or [] (a program reading it must not find fields missing).
func TestJSONKeepsEveryField(t *testing.T) {
	rep := &bench.Report{Target: "127.0.0.1:1", Method: "/openedge.Function/Call", Function: "fail", Concurrency: 1, Connections: 1, Total: 10,
		Result: bench.Result{Requests: 10, Errors: 10, ErrorCodes: map[string]int64{"UNKNOWN": 10}, ErrorSamples: map[string]string{"UNKNOWN": "x"}, Elapsed: time.Second, RPS: 10}}
	var buf bytes.Buffer
	require.NoError(t, printer.JSON(&buf, rep))
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	for _, k := range []string{"target", "method", "function", "concurrency", "connections", "target_rps", "total", "duration_s",
		"payload", "payload_bytes", "requests", "ok", "errors", "error_codes", "error_samples", "elapsed_s", "rps", "latency_ms", "histogram", "sweep", "runtime"} {
		assert.Contains(t, got, k)
	}
	assert.JSONEq(t, `[]`, string(got["histogram"]), "no successful call: an empty histogram")
	assert.JSONEq(t, `null`, string(got["target_rps"]))
	assert.JSONEq(t, `null`, string(got["duration_s"]))
	assert.JSONEq(t, `10`, string(got["total"]))
	assert.JSONEq(t, `""`, string(got["payload"]))
	assert.JSONEq(t, `0`, string(got["payload_bytes"]))

	rep.Total, rep.Duration, rep.TargetRPS = 0, 1500*time.Millisecond, 250
	buf.Reset()
	require.NoError(t, printer.JSON(&buf, rep))
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.JSONEq(t, `null`, string(got["total"]))
	assert.JSONEq(t, `1.5`, string(got["duration_s"]))
	assert.JSONEq(t, `250`, string(got["target_rps"]))
}

func TestJSONSweep(t *testing.T) {
	rep := report()
	rep.Sweep = []bench.Result{{Payload: "1k", PayloadBytes: 1024, Requests: 3}, {Payload: "64k", PayloadBytes: 65536, Requests: 4}}
	var buf bytes.Buffer
	require.NoError(t, printer.JSON(&buf, rep))
	var got struct {
		Requests int64 `json:"requests"`
		Sweep    []struct {
			Payload      string `json:"payload"`
			PayloadBytes int    `json:"payload_bytes"`
			Requests     int64  `json:"requests"`
			LatencyMS    map[string]float64
		} `json:"sweep"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	require.Len(t, got.Sweep, 2)
	var top map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &top))
	assert.Equal(t, "1k", top["payload"], "the top level names the sweep's payloads")
	assert.Contains(t, top, "payload_bytes")
	assert.Nil(t, top["payload_bytes"], "a sweep has no one size")
	assert.Equal(t, "64k", got.Sweep[1].Payload)
	assert.Equal(t, 65536, got.Sweep[1].PayloadBytes)
	assert.EqualValues(t, 4, got.Sweep[1].Requests)
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, printer.Text(&buf, report()))
	out := buf.String()
	for _, want := range []string{
		"Target   127.0.0.1:50051 /openedge.Function/Call, function echo",
		"Load     8 callers on 1 connection, 1000 calls",
		"Payload  1k (1024 bytes)",
		"Requests 1000 (ok 990, errors 10) in 500ms",
		"Rate     2000.0 calls/s",
		"min 0.080ms  mean 0.900ms  p50 0.850ms  p90 1.20ms  p99 4.32ms  p99.9 12.0ms  max 15.0ms",
		"UNKNOWN                   7  e.g. \"conformance failure\"",
		"DEADLINE_EXCEEDED         3",
		"start-up  42.0ms to the first answered call",
		"peak RSS  15.0 MiB",
		"threads   9 at most",
	} {
		assert.Contains(t, out, want)
	}
	assert.Less(t, strings.Index(out, "UNKNOWN"), strings.Index(out, "DEADLINE_EXCEEDED"), "codes by count")
	assert.Contains(t, out, strings.Repeat("\u2588", 40)+" 600", "the largest bucket fills the width")

	rep := report()
	rep.TargetRPS, rep.Duration, rep.Total = 500, 10*time.Second, 0
	rep.Sweep = []bench.Result{{Payload: "1k", PayloadBytes: 1024, Requests: 3, RPS: 3}}
	buf.Reset()
	require.NoError(t, printer.Text(&buf, rep))
	assert.Contains(t, buf.String(), "500 calls/s for 10s")
	assert.Contains(t, buf.String(), "from each call's intended start")
	assert.Contains(t, buf.String(), "Payload sweep")
	assert.Contains(t, buf.String(), "Rate     2000.0 calls/s (target 500 calls/s)", "the rate kept, next to the rate asked for")
}

func TestViolations(t *testing.T) {
	bs, err := bench.ParseAssert("errors=0")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, printer.Violations(&buf, bench.Check(report(), bs)))
	assert.Equal(t, "assert failed: errors is 10, want = 0\n", buf.String())
}

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := printer.NewProgressLine(&buf)
	p.Clear()
	assert.Empty(t, buf.String(), "nothing to clear before the first update")
	p.Update(bench.Progress{Payload: "1k", Done: 250, Errors: 2, Total: 1000, Elapsed: time.Second})
	assert.Equal(t, "\r\x1b[K[1k] 250/1000 calls (25%), 2 errors, 1s, 250 calls/s", buf.String())
	buf.Reset()
	p.Update(bench.Progress{Warmup: true, Elapsed: 1500 * time.Millisecond})
	assert.Equal(t, "\r\x1b[Kwarming up 1.5s", buf.String())
	buf.Reset()
	p.Clear()
	assert.Equal(t, "\r\x1b[K", buf.String())
}

// Where a line cannot be redrawn (a CI log), a plain line at most every
// interval, none for a run shorter than that.
func TestProgressLog(t *testing.T) {
	var buf bytes.Buffer
	p := printer.NewProgressLog(&buf, 5*time.Second)
	for ms := 500; ms <= 12000; ms += 500 {
		p.Update(bench.Progress{Done: int64(ms), Total: 20000, Elapsed: time.Duration(ms) * time.Millisecond})
	}
	assert.Equal(t, "bench: 5000/20000 calls (25%), 0 errors, 5s, 1000 calls/s\nbench: 10000/20000 calls (50%), 0 errors, 10s, 1000 calls/s\n", buf.String())
	assert.NotContains(t, buf.String(), "\x1b", "no terminal codes in a log")

	buf.Reset()
	short := printer.NewProgressLog(&buf, 5*time.Second)
	short.Update(bench.Progress{Done: 10, Elapsed: time.Second})
	assert.Empty(t, buf.String())
}

// A run with no errors has error_codes and error_samples, empty.
func TestJSONErrorFieldsWithoutErrors(t *testing.T) {
	rep := &bench.Report{Target: "127.0.0.1:1", Function: "echo", Concurrency: 1, Connections: 1, Total: 10,
		Result: bench.Result{Requests: 10, OK: 10, Elapsed: time.Second, RPS: 10}}
	var buf bytes.Buffer
	require.NoError(t, printer.JSON(&buf, rep))
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.JSONEq(t, `{}`, string(got["error_codes"]))
	assert.JSONEq(t, `{}`, string(got["error_samples"]))
}
