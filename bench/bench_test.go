package bench_test

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/serve"
)

// startServe runs the reference runtime in this process on a free port of
// 127.0.0.1 and stops it when the test ends.
func startServe(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, serve.Options{Address: "127.0.0.1:0", Ready: func(a net.Addr) { ready <- a.String() }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Errorf("serve did not stop within 40s")
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not start within 10s")
	}
	return ""
}

func config(addr string) bench.Config {
	cfg := bench.NewConfig()
	cfg.Address = addr
	cfg.Concurrency = 4
	cfg.Total = 200
	return cfg
}

// consistent checks what holds for every result.
func consistent(t *testing.T, r bench.Result) {
	t.Helper()
	assert.Equal(t, r.Requests, r.OK+r.Errors, "requests = ok + errors")
	var byCode int64
	for _, n := range r.ErrorCodes {
		byCode += n
	}
	assert.Equal(t, r.Errors, byCode, "errors = sum of errors by code")
	if r.OK > 0 {
		l := r.Latency
		ordered := []time.Duration{l.Min, l.P50, l.P90, l.P99, l.P999, l.Max}
		for i := 1; i < len(ordered); i++ {
			assert.LessOrEqual(t, ordered[i-1], ordered[i], "percentiles ordered: %+v", l)
		}
		assert.Positive(t, l.Min)
		assert.True(t, l.Min <= l.Mean && l.Mean <= l.Max, "mean within min and max: %+v", l)
		var inBuckets int64
		for _, b := range r.Histogram {
			inBuckets += b.Count
		}
		assert.Equal(t, r.OK, inBuckets, "histogram counts every successful call")
	}
	if r.Requests > 0 {
		assert.Positive(t, r.RPS)
		assert.InDelta(t, float64(r.Requests)/r.Elapsed.Seconds(), r.RPS, 0.01*r.RPS+0.001)
	}
}

func TestRunEcho(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Payloads = []bench.Payload{bench.RandomPayload("1k", 1024)}
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 200, rep.Requests)
	assert.EqualValues(t, 200, rep.OK)
	assert.Zero(t, rep.Errors)
	assert.Equal(t, 1024, rep.PayloadBytes)
	assert.Equal(t, "/openedge.Function/Call", rep.Method)
	assert.Equal(t, addr, rep.Target)
	assert.Nil(t, rep.Runtime, "no runtime figures for a runtime bench did not start")
}

func TestRunBaetylAndConnections(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Schema = client.Baetyl()
	cfg.Connections = 3
	cfg.Concurrency = 6
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 200, rep.OK)
	assert.Equal(t, "/baetyl.Function/Call", rep.Method)
}

func TestRunErrorsByCode(t *testing.T) {
	addr := startServe(t)
	for _, tc := range []struct {
		function, code, sample string
	}{
		{"fail", "UNKNOWN", "conformance failure"},
		{"no-such-function", "NOT_FOUND", "no-such-function"},
	} {
		t.Run(tc.function, func(t *testing.T) {
			cfg := config(addr)
			cfg.Function = tc.function
			cfg.Total = 120
			rep, err := bench.Run(context.Background(), cfg)
			require.NoError(t, err, "failed calls are results, not a failed run")
			consistent(t, rep.Result)
			assert.EqualValues(t, 120, rep.Requests)
			assert.EqualValues(t, 120, rep.Errors)
			assert.Zero(t, rep.OK)
			assert.Equal(t, map[string]int64{tc.code: 120}, rep.ErrorCodes)
			assert.Contains(t, rep.ErrorSamples[tc.code], tc.sample)
			assert.Equal(t, bench.Latency{}, rep.Latency, "no latency without a successful call")
		})
	}
}

func TestRunDeadlineExceededCounted(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Function = "sleep"
	cfg.Payloads = []bench.Payload{bench.InlinePayload(`{"ms": 2000}`)}
	cfg.Timeout = 50 * time.Millisecond
	cfg.Total = 8
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.Equal(t, map[string]int64{"DEADLINE_EXCEEDED": 8}, rep.ErrorCodes)
}

func TestRunDuration(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Total = 0
	cfg.Duration = 300 * time.Millisecond
	var mu sync.Mutex
	var seen []bench.Progress
	cfg.Progress = func(p bench.Progress) { mu.Lock(); seen = append(seen, p); mu.Unlock() }
	cfg.ProgressInterval = 50 * time.Millisecond
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.Positive(t, rep.Requests)
	assert.GreaterOrEqual(t, rep.Elapsed, 300*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen, "progress reported while running")
	for i := 1; i < len(seen); i++ {
		assert.GreaterOrEqual(t, seen[i].Done, seen[i-1].Done, "progress only grows")
	}
	assert.LessOrEqual(t, seen[len(seen)-1].Done, rep.Requests)
}

func TestRunWarmupNotCounted(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Warmup = 100 * time.Millisecond
	cfg.Total = 50
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 50, rep.Requests)
}

func TestRunSweep(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	sizes, err := bench.ParseSizes("1k,64k")
	require.NoError(t, err)
	cfg.Payloads = sizes
	cfg.Total = 60
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, rep.Sweep, 2)
	assert.Equal(t, "1k", rep.Sweep[0].Payload)
	assert.Equal(t, 1024, rep.Sweep[0].PayloadBytes)
	assert.Equal(t, "64k", rep.Sweep[1].Payload)
	assert.Equal(t, 65536, rep.Sweep[1].PayloadBytes)
	for _, r := range rep.Sweep {
		consistent(t, r)
		assert.EqualValues(t, 60, r.OK)
	}
	consistent(t, rep.Result)
	assert.EqualValues(t, 120, rep.Requests, "the top level adds up the sweep")
	assert.Equal(t, rep.Sweep[0].Elapsed+rep.Sweep[1].Elapsed, rep.Elapsed)
}

// In --rps mode a call that cannot start on time is late, and its latency
// counts from when it was due. Two callers of a 50ms function manage 40
// calls/s; asked for 100/s, the 40th call (due at 390ms) cannot start before
// 19×50ms = 950ms, so it takes at least 560ms + 50ms from its intended start.
func TestRunRateMeasuresFromIntendedStart(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Function = "sleep"
	cfg.Payloads = []bench.Payload{bench.InlinePayload(`{"ms": 50}`)}
	cfg.Concurrency = 2
	cfg.RPS = 100
	cfg.Total = 40
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 40, rep.OK)
	assert.GreaterOrEqual(t, rep.Latency.Max, 600*time.Millisecond, "latency counts the wait for a free caller")
	assert.GreaterOrEqual(t, rep.Elapsed, time.Second)
	assert.Equal(t, 100.0, rep.TargetRPS)
}

// A paced run of n calls at r calls/s spreads them over (n-1)/r at least,
// however fast the runtime is.
func TestRunRatePaces(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.RPS = 200
	cfg.Total = 100
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 100, rep.OK)
	assert.GreaterOrEqual(t, rep.Elapsed, 495*time.Millisecond)
	assert.LessOrEqual(t, rep.RPS, 202.0)

	cfg.Total = 0
	cfg.Duration = 250 * time.Millisecond
	rep, err = bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 50, rep.Requests, "250ms at 200/s: calls due at 0, 5, ..., 245ms")
	assert.GreaterOrEqual(t, rep.Elapsed, 250*time.Millisecond)
	assert.LessOrEqual(t, rep.RPS, 201.0)
}

// The rate reported in --rps mode is the pace kept, never more: one call
// at 2 calls/s is a phase of half a second however fast the answer (the
// rate used to be one call over its latency: hundreds of calls/s).
func TestRunRateNeverOverstatesThePace(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.RPS = 2
	cfg.Total = 1
	start := time.Now()
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 1, rep.OK)
	assert.GreaterOrEqual(t, rep.Elapsed, 500*time.Millisecond)
	assert.LessOrEqual(t, rep.RPS, 2.0)
	assert.Greater(t, rep.RPS, 1.0, "not understated either, on an idle runtime")
	assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "the phase lasts its schedule")

	// A sweep of two paced phases: each takes its own schedule.
	cfg.Total = 3
	cfg.RPS = 20
	cfg.Payloads, err = bench.ParseSizes("1k,2k")
	require.NoError(t, err)
	rep, err = bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	for _, r := range rep.Sweep {
		assert.GreaterOrEqual(t, r.Elapsed, 150*time.Millisecond)
		assert.LessOrEqual(t, r.RPS, 20.0)
	}
	assert.Equal(t, "1k,2k", rep.Payload)
}

func TestRunInterrupted(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Total = 0
	cfg.Duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	rep, err := bench.Run(ctx, cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "interrupted")
	assert.Less(t, time.Since(start), 30*time.Second)
	require.NotNil(t, rep, "the calls made so far are reported")
	consistent(t, rep.Result)
	assert.Positive(t, rep.Requests)
	assert.Zero(t, rep.ErrorCodes["CANCELLED"], "calls cancelled by the interruption are not errors of the runtime")
}

func TestRunNoRuntimeListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	cfg := config(addr)
	cfg.ConnectTimeout = 300 * time.Millisecond
	_, err = bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "accepted no connection within 300ms")
	assert.Contains(t, err.Error(), "connection refused")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*bench.Config)
		want string
	}{
		{"no target", func(c *bench.Config) { c.Address = "" }, "no runtime"},
		{"both targets", func(c *bench.Config) { c.Launch = &bench.Launch{Command: []string{"rt"}} }, "not both"},
		{"no program", func(c *bench.Config) { c.Address = ""; c.Launch = &bench.Launch{} }, "no runtime program to start"},
		{"negative grace", func(c *bench.Config) { c.Address = ""; c.Launch = &bench.Launch{Command: []string{"rt"}, Grace: -1} }, "grace period must not be negative"},
		{"profile", func(c *bench.Config) { c.Profile = "mqtt" }, `profile "mqtt": want openedge or baetyl`},
		{"concurrency", func(c *bench.Config) { c.Concurrency = 0 }, "concurrency must be at least 1"},
		{"connections", func(c *bench.Config) { c.Connections = 5; c.Concurrency = 2 }, "cannot exceed concurrency"},
		{"n and z", func(c *bench.Config) { c.Duration = time.Second }, "not both"},
		{"neither n nor z", func(c *bench.Config) { c.Total = 0 }, "give a number of calls or a duration"},
		{"rps", func(c *bench.Config) { c.RPS = -1 }, "rps must not be negative"},
		{"rps NaN", func(c *bench.Config) { c.RPS = math.NaN() }, "rps must be a finite number"},
		{"rps Inf", func(c *bench.Config) { c.RPS = math.Inf(1) }, "rps must be a finite number"},
		{"function", func(c *bench.Config) { c.Function = "" }, "function name is empty"},
		{"payload twice", func(c *bench.Config) {
			c.Payloads = []bench.Payload{bench.RandomPayload("1k", 1024), bench.RandomPayload("1k", 1024)}
		}, "payload 1k given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config("127.0.0.1:1")
			tc.edit(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var ce *bench.ConfigError
			assert.ErrorAs(t, err, &ce)
			_, err = bench.Run(context.Background(), cfg)
			require.Error(t, err, "Run validates too")
		})
	}
	cfg := config("127.0.0.1:1")
	assert.NoError(t, cfg.Validate())
}

func TestParseSizes(t *testing.T) {
	ps, err := bench.ParseSizes("1k, 64k,1m,1.5k")
	require.NoError(t, err)
	require.Len(t, ps, 4)
	assert.Equal(t, "64k", ps[1].Name)
	assert.Len(t, ps[2].Data, 1<<20)
	assert.Len(t, ps[3].Data, 1536)
	assert.Equal(t, ps[0].Data, bench.RandomPayload("x", 1024).Data, "random payloads are the same from run to run")
	for _, in := range []string{"1k,,2k", "", "k", "-1", "abc", "3g", "NaN"} {
		_, err = bench.ParseSizes(in)
		assert.Error(t, err, in)
	}
}

// A payload whose request would be over bench's own send limit never
// reaches the runtime: the run is refused before anything starts, with a
// ConfigError that says which limit to raise, instead of a report of calls
// that failed in bench itself.
func TestRunRefusesPayloadOverSendLimit(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	cfg := config("")
	cfg.Launch = &bench.Launch{Command: []string{"/bin/sh", "-c", "touch " + marker + "; exec sleep 60"}}
	big, err := bench.ParseSizes("1k,10m")
	require.NoError(t, err)
	cfg.Payloads = big
	rep, err := bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Nil(t, rep)
	assert.NoFileExists(t, marker, "nothing is started for a run that cannot send")
	var ce *bench.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "payload 10m: a request of 10485")
	assert.Contains(t, err.Error(), "--max-msg-size")

	// Raised, the same payload is sent, and the runtime answers it (here:
	// over its own 4 MiB limit, which bench counts as the runtime's error).
	addr := startServe(t)
	cfg = config(addr)
	cfg.Total, cfg.Concurrency = 2, 1
	cfg.Payloads = big[1:]
	cfg.Dial.MaxMsgSize = 16 << 20
	rep, err = bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 2, rep.ErrorCodes["RESOURCE_EXHAUSTED"], "%+v", rep.ErrorSamples)
	assert.NotContains(t, rep.ErrorSamples["RESOURCE_EXHAUSTED"], "trying to send", "the runtime refused it, not bench")
}

// More callers than calls: the extra callers would never call; the run
// uses as many callers as calls and says so.
func TestRunCallersCappedByCalls(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Concurrency = 500
	cfg.Total = 7
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 7, rep.OK)
	assert.Equal(t, 7, rep.Concurrency)
}

// bench starts the runtime, loads it, stops it, and reports its usage.
func TestRunStartedRuntime(t *testing.T) {
	cfg := launched("serve")
	cfg.Connections = 2 // each waited for
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 200, rep.OK)
	require.NotNil(t, rep.Runtime)
	assert.Positive(t, rep.Runtime.PeakRSS)
	assert.Positive(t, rep.Runtime.PeakThreads)
	assert.GreaterOrEqual(t, rep.Runtime.Samples, 3, "at start, after the first call, after the run")
	assert.Positive(t, rep.Runtime.Startup)
	assert.True(t, strings.HasPrefix(rep.Target, "127.0.0.1:"), rep.Target)
	assertNoChildren(t)
}

// A started runtime that dies mid-run ends the run with how it ended and
// what it wrote last; the calls made so far are reported.
func TestRunStartedRuntimeDies(t *testing.T) {
	cfg := launched("die")
	cfg.Total = 0
	cfg.Duration = time.Minute
	start := time.Now()
	rep, err := bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "runtime exited during the run: the runtime ended (exit status 3); its stderr ends with:\nboom")
	assert.Less(t, time.Since(start), 30*time.Second)
	require.NotNil(t, rep)
	consistent(t, rep.Result)
	assert.Positive(t, rep.Runtime.Samples, "the usage of a runtime that died is reported")
	assertNoChildren(t)
}

// A program that cannot be started is a StartError that names it: a
// relative one found neither under Dir nor in the current directory names
// both places.
func TestRunStartFails(t *testing.T) {
	dir := t.TempDir()
	cfg := config("")
	cfg.Launch = &bench.Launch{Command: []string{"./nope"}, Dir: dir}
	_, err := bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "start runtime: runtime ./nope: no such file: neither "+filepath.Join(dir, "nope")+" nor "), err.Error())
	var se *bench.StartError
	assert.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, launch.ErrStart)

	cfg.Launch = &bench.Launch{Command: []string{dir}}
	_, err = bench.Run(context.Background(), cfg)
	assert.ErrorAs(t, err, &se, "a directory")
	assertNoChildren(t)
}

// A relative program is run from Dir: --dir proj ./bin/rt is proj/bin/rt,
// and --dir proj proj/bin/rt works too.
func TestRunStartsUnderDir(t *testing.T) {
	top := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(top, "proj", "bin"), 0o755))
	require.NoError(t, os.Symlink(os.Args[0], filepath.Join(top, "proj", "bin", "rt")))
	t.Chdir(top)
	for _, path := range []string{"./bin/rt", "proj/bin/rt"} {
		cfg := launched("serve")
		cfg.Launch.Command[0], cfg.Launch.Dir = path, "proj"
		cfg.Total = 10
		rep, err := bench.Run(context.Background(), cfg)
		require.NoError(t, err, path)
		assert.EqualValues(t, 10, rep.OK, path)
	}
	assertNoChildren(t)
}

// More callers than histograms: callers share them, and every call is
// still counted once.
func TestRunManyCallers(t *testing.T) {
	addr := startServe(t)
	cfg := config(addr)
	cfg.Concurrency = 150
	cfg.Connections = 2
	cfg.Total = 1500
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, err)
	consistent(t, rep.Result)
	assert.EqualValues(t, 1500, rep.OK)
}

// A started runtime that exits before it listens ends the wait at once,
// with how it ended and what it wrote last.
func TestRunStartedRuntimeExitsBeforeReady(t *testing.T) {
	cfg := launched("exit")
	cfg.ConnectTimeout = 5 * time.Minute // never reached
	rep, err := bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Nil(t, rep)
	assert.Equal(t, "runtime exited before it was ready: the runtime ended (exit status 3); its stderr ends with:\nImportError: no module named grpc", err.Error())
	assertNoChildren(t)
}

// A started runtime that stops itself (SIGSTOP) before it listens ends
// the wait at once, and is ended at once (SIGTERM cannot).
func TestRunStartedRuntimeStopped(t *testing.T) {
	cfg := launched("stop")
	cfg.ConnectTimeout = 5 * time.Minute // never reached
	cfg.Launch.Grace = 5 * time.Minute   // never waited
	done := make(chan error, 1)
	go func() {
		_, err := bench.Run(context.Background(), cfg)
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the runtime was stopped (SIGSTOP) before it accepted a connection on 127.0.0.1:")
	case <-time.After(time.Minute):
		// Once, in a fresh-clone run beside two busy loops, bench waited
		// out this bound for a runtime that had stopped itself, and was
		// not seen to again in 15 runs: what each goroutine was doing is
		// what would tell why. The processes are ended, so that the tests
		// after this one are not failed by them.
		buf := make([]byte, 1<<20)
		t.Logf("bench's goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		killChildren(t)
		t.Fatal("bench waited for a stopped runtime")
	}
	assertNoChildren(t)
}

// A started runtime that listens elsewhere: when the time runs out, the
// error says where it listens.
func TestRunStartedRuntimeListensElsewhere(t *testing.T) {
	cfg := launched("elsewhere")
	// Long enough for the runtime to listen on a busy machine (bench waits
	// it out: the runtime may still move to its address).
	cfg.ConnectTimeout = 5 * time.Second
	_, err := bench.Run(context.Background(), cfg)
	require.Error(t, err)
	assert.Regexp(t, `^no gRPC connection on 127\.0\.0\.1:\d+ within 5s of exec \(the runtime listens on 127\.0\.0\.1:\d+ instead: read the address from the environment\)$`, err.Error())
	assertNoChildren(t)
}
