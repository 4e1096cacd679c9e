package conformance

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

func sample(main int, threads map[int][2]time.Duration) sched {
	return sched{ok: true, threads: threads, mains: map[int]bool{main: true}}
}

// Only the main thread's wait counts, at most the window less the CPU the
// tree used over the CPUs: a runtime that keeps every core busy itself
// excuses nothing.
func TestWaitBetween(t *testing.T) {
	ms := time.Millisecond
	from := sample(1, map[int][2]time.Duration{1: {10 * ms, 5 * ms}, 2: {0, 0}})
	to := sample(1, map[int][2]time.Duration{1: {110 * ms, 805 * ms}, 2: {50 * ms, 900 * ms}, 3: {40 * ms, 10 * ms}})
	w := waitBetween(from, to, time.Second)
	assert.Equal(t, 800*ms, w.longest, "the main thread's wait; the other thread's is off the path")
	assert.Equal(t, 190*ms, w.used)
	assert.Equal(t, 800*ms, w.excused)

	cpus := time.Duration(runtime.NumCPU())
	busy := sample(1, map[int][2]time.Duration{1: {200 * ms, 800 * ms}, 2: {cpus * time.Second, 0}})
	w = waitBetween(sched{}, busy, time.Second)
	assert.Equal(t, time.Duration(0), w.excused, "its own threads kept every CPU busy")

	w = waitBetween(sched{}, sched{}, time.Second)
	assert.False(t, w.ok)
	assert.Contains(t, w.notKnown, "schedstat")
}

// A thread's wait counts at most waitPerRun times the CPU it used: a
// runtime that sleeps before it listens, whose main thread woke often for
// a moment on a busy machine (seen: a Go runtime's, 1.57 s "waiting" in a
// 1.62 s start), is not excused by the wake-ups' delays.
func TestWaitCountsUpToItsRun(t *testing.T) {
	ms := time.Millisecond
	to := sample(1, map[int][2]time.Duration{1: {12 * ms, 1570 * ms}, 2: {3 * ms, 40 * ms}})
	w := waitBetween(sched{}, to, 1620*ms)
	assert.Equal(t, 1570*ms, w.longest)
	assert.Equal(t, 96*ms, w.excused)
	m := machine{wait: w}
	ok, tail := m.judge(1620*ms, time.Second)
	assert.False(t, ok)
	assert.Contains(t, tail, "the runtime's main thread waited 1.57s for a CPU but ran only 12ms, so 96ms counts")
	assert.Contains(t, tail, "this is the runtime, not the machine (1.52s without the machine's part)")

	// A CPU-bound start on a busy machine waits a few times what it runs:
	// all of it counts.
	to = sample(1, map[int][2]time.Duration{1: {330 * ms, 1360 * ms}})
	assert.Equal(t, 1360*ms, waitBetween(sched{}, to, 1750*ms).excused)
}

// Over a window of calls, a thread that served them counts (grpcio's
// thread pool: the main thread only waits); a thread that did not run in
// the window does not.
func TestWaitBetweenCalls(t *testing.T) {
	ms := time.Millisecond
	from := sample(1, map[int][2]time.Duration{1: {10 * ms, 0}, 2: {0, 0}, 3: {0, 0}})
	to := sample(1, map[int][2]time.Duration{1: {10 * ms, 0}, 2: {50 * ms, 400 * ms}, 3: {0, 900 * ms}})
	w := waitBetweenCalls(from, to, time.Second)
	assert.Equal(t, 400*ms, w.longest, "the worker that ran; not thread 3, which did not")
	assert.Equal(t, "busiest thread", w.who)
	assert.Equal(t, time.Duration(0), waitBetween(from, to, time.Second).longest, "the main thread alone waited nothing")
	m := machine{wait: w}
	assert.Contains(t, m.observed(), "the runtime's busiest thread waited 400ms for a CPU")
}

func TestMachineJudge(t *testing.T) {
	ms := time.Millisecond
	m := machine{ref: 90 * ms, refWords: "the reference started in 90ms", wait: cpuWait{ok: true, longest: 20 * ms, excused: 20 * ms}}
	ok, tail := m.judge(1300*ms, time.Second)
	assert.False(t, ok)
	assert.Equal(t, ", over the 1s line; the reference started in 90ms; the runtime's main thread waited 20ms for a CPU, so this is the runtime, not the machine (1.21s without the machine's part)", tail)

	m.wait = cpuWait{ok: true, longest: 600 * ms, excused: 600 * ms}
	ok, tail = m.judge(1300*ms, time.Second)
	assert.True(t, ok)
	assert.Contains(t, tail, "600ms of it is the machine's, so this is the machine, not the runtime (700ms without it)")

	ok, tail = m.judge(900*ms, time.Second)
	assert.True(t, ok)
	assert.Equal(t, " (the reference started in 90ms; the runtime's main thread waited 600ms for a CPU)", tail)

	// Starved: 6.6s of its 7.8s waiting for a CPU, 1.2s without it. Not
	// judged, and not blamed on the runtime.
	m.wait = cpuWait{ok: true, longest: 6600 * ms, excused: 6600 * ms}
	ok, tail = m.judge(7800*ms, time.Second)
	assert.False(t, ok)
	assert.True(t, m.starved(7800*ms, time.Second))
	assert.Contains(t, tail, "and still 1.20s without the machine's part")
	assert.Contains(t, tail, "so conform could not judge it")
	assert.NotContains(t, tail, "this is the runtime")

	// Half of it the machine's: judged, the runtime's.
	m.wait = cpuWait{ok: true, longest: 1500 * ms, excused: 1500 * ms}
	ok, tail = m.judge(3000*ms, time.Second)
	assert.False(t, ok)
	assert.False(t, m.starved(3000*ms, time.Second))
	assert.Contains(t, tail, "so this is the runtime, not the machine (1.50s without the machine's part)")
}

// start.time's figure runs to the first call's answer, so its machine's
// part does too: the main thread's wait until it listened, then the
// busiest thread's while the first call was served (the CI run that
// called a correct Node runtime "the runtime" counted the first only).
func TestMachineThenWindow(t *testing.T) {
	ms := time.Millisecond
	m := machine{wait: cpuWait{ok: true, who: "main thread", longest: 2050 * ms, excused: 2050 * ms}}
	ok, tail := m.judge(3230*ms, time.Second)
	assert.False(t, ok, "the main thread's wait alone leaves 1.18s")
	assert.Contains(t, tail, "this is the runtime")

	m.then = cpuWait{ok: true, who: "busiest thread", longest: 400 * ms, excused: 400 * ms, window: 510 * ms}
	m.thenWhat = "its first call"
	ok, tail = m.judge(3230*ms, time.Second)
	assert.True(t, ok)
	assert.Contains(t, tail, "the runtime's main thread waited 2.05s for a CPU, then its busiest thread 400ms more in its first call: 2.45s of it is the machine's")
	assert.Equal(t, 2450.0, m.figures(3230*ms, time.Second, 0)["cpu_wait_ms"])

	// A first call that sleeps is not a wait for a CPU: still the runtime's.
	m.then = cpuWait{ok: true, who: "busiest thread", longest: 2 * ms, excused: 2 * ms, window: 2500 * ms}
	ok, tail = m.judge(3230*ms, time.Second)
	assert.False(t, ok)
	assert.Contains(t, tail, "this is the runtime, not the machine (1.18s without the machine's part)")
}

// A readiness wait that ended with the run's context is the budget's, not
// the runtime's: the scenarios say "not run", never that the runtime did
// not become ready.
func TestBudgetSpentIsNotTheRuntime(t *testing.T) {
	assert.True(t, budgetSpent(context.DeadlineExceeded))
	assert.True(t, budgetSpent(fmt.Errorf("wait: %w", context.Canceled)))
	assert.False(t, budgetSpent(&runtimeproc.NotReadyError{Addr: "127.0.0.1:1", Timeout: time.Second}))
	assert.False(t, budgetSpent(nil))
	l := &loadResult{inst: &instance{n: 4}, notReady: context.DeadlineExceeded}
	o := l.unusable()
	require.NotNil(t, o)
	assert.Equal(t, Skip, o.Status)
	assert.Contains(t, o.Message, "time budget ran out while instance #4")
	lr := &lifeResult{inst: &instance{n: 5}, notReady: context.DeadlineExceeded}
	o = lr.unusable()
	require.NotNil(t, o)
	assert.Equal(t, Skip, o.Status, "the long life's instance too")
	assert.Contains(t, o.Message, "time budget ran out while instance #5 for the long life started")
}
