package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/internal/launch"
)

func TestParseAssert(t *testing.T) {
	bs, err := bench.ParseAssert("p99<20ms, errors=0 ,rps>5000,p99.9<=1.5s,max<800us,errors<1%,rss<50m,threads<=20,requests>=10,mean>0s,p50==3ms,rss<1g")
	require.NoError(t, err)
	want := []bench.Bound{
		{Metric: bench.MetricP99, Op: bench.OpLess, Duration: 20 * time.Millisecond},
		{Metric: bench.MetricErrors, Op: bench.OpEqual, Value: 0},
		{Metric: bench.MetricRPS, Op: bench.OpGreater, Value: 5000},
		{Metric: bench.MetricP999, Op: bench.OpLessEq, Duration: 1500 * time.Millisecond},
		{Metric: bench.MetricMax, Op: bench.OpLess, Duration: 800 * time.Microsecond},
		{Metric: bench.MetricErrors, Op: bench.OpLess, Value: 1, Percent: true},
		{Metric: bench.MetricRSS, Op: bench.OpLess, Value: 50 << 20},
		{Metric: bench.MetricThreads, Op: bench.OpLessEq, Value: 20},
		{Metric: bench.MetricRequests, Op: bench.OpGreaterEq, Value: 10},
		{Metric: bench.MetricMean, Op: bench.OpGreater, Duration: 0},
		{Metric: bench.MetricP50, Op: bench.OpEqual, Duration: 3 * time.Millisecond},
		{Metric: bench.MetricRSS, Op: bench.OpLess, Value: 1 << 30},
	}
	require.Len(t, bs, len(want))
	for i := range want {
		got := bs[i]
		got.Text, got.ValueText = "", ""
		assert.Equal(t, want[i], got, "bound %d", i)
	}
	assert.Equal(t, "p99<20ms", bs[0].Text)
	assert.True(t, bs[6].NeedsRuntime())
	assert.False(t, bs[0].NeedsRuntime())
}

func TestParseAssertErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":             "no condition",
		" , ":          "no condition",
		"p99":          "no comparison",
		"p99 20ms":     "no comparison",
		"p98<20ms":     `unknown metric "p98"`,
		"p99<20":       "p99 needs a unit, e.g. 20ms",
		"p99<fast":     `bad duration "fast"`,
		"p99<":         "no value after <",
		"rps>lots":     `bad number "lots"`,
		"errors=-1":    `bad number "-1"`,
		"rps>NaN":      `bad number "NaN"`,
		"rps<Inf":      `bad number "Inf"`,
		"p99!=3ms":     "unknown comparison",
		"p99=>3ms":     "unknown comparison",
		"rss<50q":      `size "50q": want a number of bytes`,
		"p99<20ms,x=1": `bad --assert condition "x=1": unknown metric "x"`,
	} {
		_, err := bench.ParseAssert(in)
		if assert.Error(t, err, in) {
			assert.Contains(t, err.Error(), want, in)
		}
	}
}

func handReport() *bench.Report {
	return &bench.Report{
		Result: bench.Result{
			Requests: 1000, OK: 990, Errors: 10, RPS: 6000,
			ErrorCodes: map[string]int64{"UNKNOWN": 10},
			Latency:    bench.Latency{Min: time.Millisecond, P50: 2 * time.Millisecond, P90: 5 * time.Millisecond, P99: 19 * time.Millisecond, P999: 30 * time.Millisecond, Max: 31 * time.Millisecond},
		},
	}
}

func TestCheck(t *testing.T) {
	rep := handReport()
	check := func(s string) []bench.Violation {
		bs, err := bench.ParseAssert(s)
		require.NoError(t, err)
		return bench.Check(rep, bs)
	}
	assert.Empty(t, check("p99<20ms,rps>5000,errors<=10,errors<2%,requests=1000,max<=31ms,p50>=2ms"))
	vs := check("p99<19ms,errors=0,rps>=6001,errors<1%")
	require.Len(t, vs, 4)
	assert.Equal(t, "p99 is 19ms, want < 19ms", vs[0].Error())
	assert.Equal(t, "errors is 10, want = 0", vs[1].Error())
	assert.Equal(t, "rps is 6000.0, want >= 6001", vs[2].Error())
	assert.Equal(t, "errors is 1%, want < 1%", vs[3].Error())

	// Runtime bounds need a runtime started by bench.
	vs = check("rss<50m")
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Error(), "bench did not start the runtime")
	rep.Runtime = &bench.RuntimeReport{Usage: launch.Usage{PeakRSS: 60 << 20, PeakThreads: 12}}
	vs = check("rss<50m,threads<=20")
	require.Len(t, vs, 1)
	assert.Equal(t, "rss is 60.0MiB, want < 50m", vs[0].Error())

	// No successful call: a latency bound cannot hold.
	rep = &bench.Report{Result: bench.Result{Requests: 5, Errors: 5}}
	vs = check("p99<1s")
	require.Len(t, vs, 1)
	assert.Contains(t, vs[0].Error(), "no successful call")

	// A sweep is checked payload by payload.
	rep = &bench.Report{Sweep: []bench.Result{
		{Payload: "1k", Requests: 10, OK: 10, Latency: bench.Latency{P99: time.Millisecond, Max: time.Millisecond}},
		{Payload: "1m", Requests: 10, OK: 10, Latency: bench.Latency{P99: 40 * time.Millisecond, Max: 40 * time.Millisecond}},
	}}
	vs = check("p99<20ms")
	require.Len(t, vs, 1)
	assert.Equal(t, "p99 is 40ms, want < 20ms (payload 1m)", vs[0].Error())
}

// The bounds hold a real run: met ones pass, a broken one is reported.
func TestCheckRealRun(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	bs, err := bench.ParseAssert("errors=0,requests=200,p99<30s,rps>1")
	require.NoError(t, err)
	assert.Empty(t, bench.Check(rep, bs))
	bs, err = bench.ParseAssert("p50<1ns,errors=0")
	require.NoError(t, err)
	vs := bench.Check(rep, bs)
	require.Len(t, vs, 1)
	assert.Equal(t, bench.MetricP50, vs[0].Bound.Metric)
}
