package conformance

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// The timing checks (start.time, call.concurrent, call.deadline) are
// judged against the machine as well as against their absolute line, from
// two observations made at the same moment as the runtime's own figure:
//
//   - the reference: a bare gRPC server conform controls (Config.Reference,
//     ServeReference), started with the runtime by the same launcher, made
//     ready the same way, and given the same calls beside the runtime's.
//     What it takes beyond what was asked of it is what the machine takes
//     now.
//   - the runtime's own wait for a CPU: Linux counts, per thread, the time
//     it was ready to run but waited for a CPU (/proc/PID/task/TID/schedstat).
//     The main thread's wait over the measured window — the longest of the
//     process tree's main threads — is time the machine, not the runtime,
//     took: a main thread runs the start (and Node's event loop) one step
//     after the other, so its waits add up on the path that was measured.
//     Other threads (a garbage collector, Go's sysmon) wake up often and
//     wait too, off that path, and are not counted. It is at most the window
//     less the CPU time the whole tree used spread over every core, so that
//     a runtime cannot excuse itself by keeping the cores busy.
//
// The machine's part is the larger of the two. A check fails only when its
// figure is over the line and still over it once the machine's part is
// taken off; the message gives every figure. A figure that could not be
// observed (no reference given, no schedstat) is left out, and said so.

// Calibration is what conform observed of the machine during the run: the
// reference's figures and the runtime's waits for a CPU. A figure that was
// not measured is absent.
type Calibration struct {
	// Reference is the reference program; Error says why it could not be
	// used, when it could not.
	Reference []string `json:"reference,omitempty"`
	Error     string   `json:"error,omitempty"`
	// ReferenceReadyMS: from exec to the reference's first connection,
	// started at the same moment as the runtime.
	ReferenceReadyMS *float64 `json:"reference_ready_ms,omitempty"`
	// ReferenceConcurrentMS: the reference's 4 parallel 500 ms sleeps, at
	// the same moment as call.concurrent's.
	ReferenceConcurrentMS *float64 `json:"reference_concurrent_ms,omitempty"`
	// ReferenceNextCallMS: the reference's echo after its 200 ms deadline,
	// at the same moment as call.deadline's.
	ReferenceNextCallMS *float64 `json:"reference_next_call_ms,omitempty"`
	// The runtime's longest wait for a CPU (bounded as documented) while
	// starting, during call.concurrent and during call.deadline's next
	// call.
	StartCPUWaitMS      *float64 `json:"start_cpu_wait_ms,omitempty"`
	ConcurrentCPUWaitMS *float64 `json:"concurrent_cpu_wait_ms,omitempty"`
	DeadlineCPUWaitMS   *float64 `json:"deadline_cpu_wait_ms,omitempty"`
	// CPUs is the number of CPUs conform may run on.
	CPUs int `json:"cpus"`
}

// timingChecks are the checks calibrated against the machine.
var timingChecks = []*Check{startTime, callConcurrent, callDeadline}

// referenceRun is the reference instance of a run.
type referenceRun struct {
	inst  *instance
	err   error         // it could not be started, or did not become ready
	ready chan struct{} // closed once inst is ready or err is set
}

// startReference starts the reference beside the runtime, when a timing
// check is selected and a reference is given.
func (r *runner) startReference(checks []*Check) {
	if len(r.cfg.Reference) == 0 {
		return
	}
	want := false
	for _, c := range checks {
		want = want || contains(timingIDs(), c.ID)
	}
	if !want {
		return
	}
	ref := &referenceRun{ready: make(chan struct{})}
	r.ref = ref
	native := runtimeproc.Native{}
	addr, err := r.listenAddress(native, true)
	if err == nil {
		env := convention.RuntimeEnv(r.baseEnv, ProfileOpenEdge, addr, "oe-rt-conform.reference", nil)
		ref.inst, err = r.spawn(native, 0, "reference", runtimeproc.Instance{Name: "reference", Listen: addr,
			Spec: launch.Spec{Path: r.cfg.Reference[0], Args: r.cfg.Reference[1:], Env: env}}, client.OpenEdge())
	}
	if err != nil {
		ref.err = fmt.Errorf("the reference could not be started: %w", err)
		close(ref.ready)
		return
	}
	go func() {
		defer close(ref.ready)
		if err := ref.inst.waitReady(r.ctx, referenceTimeout(r.cfg), nil); err != nil {
			ref.err = fmt.Errorf("the reference did not become ready: %w", err)
		}
	}()
}

// referenceTimeout bounds the wait for the reference to accept its first
// connection: a bare server slower than that gives no figures.
func referenceTimeout(cfg *Config) time.Duration { return min(cfg.StartTimeout, 5*time.Second) }

func timingIDs() []string {
	var ids []string
	for _, c := range timingChecks {
		ids = append(ids, c.ID)
	}
	return ids
}

// reference returns the reference once it is ready, waiting at most wait;
// nil and why when there is none (yet).
func (r *runner) reference(wait time.Duration) (*instance, string) {
	ref := r.ref
	if ref == nil {
		return nil, "no reference was given to conform"
	}
	select {
	case <-ref.ready:
	default:
		if wait <= 0 {
			return nil, "the reference was not ready yet"
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ref.ready:
		case <-t.C:
			return nil, fmt.Sprintf("the reference was not ready within %s", dur(wait))
		case <-r.ctx.Done():
			return nil, "the run ended first"
		}
	}
	if ref.err != nil {
		return nil, ref.err.Error()
	}
	if !ref.inst.alive() {
		return nil, "the reference " + ref.inst.endWords()
	}
	return ref.inst, ""
}

// callFunc makes one call and classifies its failure.
type callFunc func(m *client.Message, timeout time.Duration) (*client.Message, *callErr)

// onReference runs measure against the reference, beside the check's own
// measurement, and returns a function that waits for its result (nil and
// why when there is no reference).
func (c *checkCtx) onReference(measure func(call callFunc) any) func() (any, string) {
	ref, why := c.reference(referenceTimeout(c.cfg()))
	if ref == nil {
		return func() (any, string) { return nil, why }
	}
	done := make(chan any, 1)
	owner := "calibration for " + c.check.ID
	go func() {
		done <- measure(func(m *client.Message, timeout time.Duration) (*client.Message, *callErr) {
			return ref.call(c.ctx, owner, m, timeout)
		})
	}()
	return func() (any, string) { return <-done, "" }
}

// sched is what Linux's scheduler says of a process tree's threads at one
// moment: per thread, the time it ran on a CPU and the time it was ready to
// run but waited for one.
type sched struct {
	ok      bool
	threads map[int][2]time.Duration // TID: run, wait
	mains   map[int]bool             // the TIDs that are a process's main thread
}

// readSched reads /proc/PID/task/TID/schedstat for every thread of the
// process tree rooted at pid.
func readSched(pid int) sched {
	s := sched{threads: map[int][2]time.Duration{}, mains: map[int]bool{}}
	for _, p := range launch.Tree(pid) {
		dir := "/proc/" + strconv.Itoa(p.Pid) + "/task"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			tid, err1 := strconv.Atoi(e.Name())
			if len(f) < 2 || err1 != nil {
				continue
			}
			run, err2 := strconv.ParseInt(f[0], 10, 64)
			wait, err3 := strconv.ParseInt(f[1], 10, 64)
			if err2 != nil || err3 != nil {
				continue
			}
			s.threads[tid] = [2]time.Duration{time.Duration(run), time.Duration(wait)}
			if tid == p.Pid {
				s.mains[tid] = true
				s.ok = true
			}
		}
	}
	return s
}

// cpuWait is the runtime's wait for a CPU over a window, as the machine's
// part: the longest wait of a main thread of its process tree between from
// and to (a thread absent from from counts from its start), for a start
// each thread's at most waitPerRun times the CPU it used in the window,
// and in all at
// most the window less the CPU time the tree used divided by the CPUs.
type cpuWait struct {
	ok       bool
	who      string        // whose wait: "main thread", or "thread" (any thread)
	longest  time.Duration // the longest wait of a main thread (of any thread)
	ran      time.Duration // the CPU time the thread of longest used
	capped   bool          // a thread's wait was cut to waitPerRun times its CPU time
	used     time.Duration // the CPU time the tree used
	excused  time.Duration // what counts as the machine's part
	window   time.Duration
	notKnown string
}

func waitBetween(from, to sched, window time.Duration) cpuWait {
	return waitOf(from, to, window, false, true)
}

// waitInFirstCall is the wait over a start's first call, served on
// whatever thread serves calls: the busiest thread's, each thread's
// bounded by its CPU time as a start's main thread's is.
func waitInFirstCall(from, to sched, window time.Duration) cpuWait {
	return waitOf(from, to, window, true, true)
}

// waitBetweenCalls is waitBetween for a window of calls, served on whatever
// threads the runtime serves calls on (grpcio's thread pool, grpc-go's
// goroutines): the longest wait of any thread of the tree that ran in the
// window, with the same cap.
func waitBetweenCalls(from, to sched, window time.Duration) cpuWait {
	return waitOf(from, to, window, true, false)
}

// waitOf is the wait of the main threads (or of any thread that ran) over
// the window; with perRun, each thread's counts at most waitPerRun times
// the CPU it used (a start's windows; the windows of calls have the
// reference's figures beside them, and are left as they were measured).
func waitOf(from, to sched, window time.Duration, anyThread, perRun bool) cpuWait {
	w := cpuWait{window: window, who: "main thread"}
	if anyThread {
		w.who = "busiest thread"
	}
	if !to.ok {
		w.notKnown = "the runtime's wait for a CPU is not known here (no /proc/PID/task/*/schedstat)"
		return w
	}
	w.ok = true
	var counted time.Duration
	for tid, t := range to.threads {
		f := from.threads[tid]
		if to.mains[tid] || anyThread && t[0] > f[0] {
			run, wait := t[0]-f[0], t[1]-f[1]
			if wait > w.longest {
				w.longest, w.ran = wait, run
			}
			if perRun && wait > waitPerRun*run {
				wait, w.capped = waitPerRun*run, true
			}
			counted = max(counted, wait)
		}
		w.used += t[0] - f[0]
	}
	w.longest = min(w.longest, window)
	cpus := max(1, runtime.NumCPU())
	w.excused = max(0, min(counted, w.longest, window-w.used/time.Duration(cpus)))
	return w
}

// waitPerRun bounds the wait for a CPU that counts as the machine's part,
// per thread, by the CPU time the thread used: a thread with work to do
// on a machine with n runnable threads per CPU waits about n-1 times what
// it runs (a start's main thread, measured: 2-4 times beside the race
// tests or eight busy loops on 2 cores). A thread that sleeps and wakes
// often for a moment gathers each wake-up's delay instead — one of Go's
// scheduler threads, while the runtime sleeps before it listens — and
// that is not on the runtime's path: a sleeping Go runtime's main thread
// was seen "waiting" 1.57 s of a 1.62 s start beside the race tests.
const waitPerRun = 8

// machine is the machine's part of a timing figure, and what was observed.
type machine struct {
	ref      time.Duration // what the reference took beyond what was asked of it
	refWords string        // what the reference did, in words; "" without one
	noRef    string        // why there is no reference figure
	wait     cpuWait
	// then is the wait over a second window that follows wait's, on
	// other threads (start.time: the first call, served wherever the
	// runtime serves calls, after the main thread listened); ok false
	// when there is none.
	then     cpuWait
	thenWhat string // what ran in then's window: "its first call"
}

// waited is the machine's part of the runtime's wait for a CPU, over both
// windows.
func (m machine) waited() time.Duration {
	w := m.wait.excused
	if m.then.ok {
		w += m.then.excused
	}
	return w
}

func (m machine) part() time.Duration {
	p := m.waited()
	if m.refWords != "" {
		p = max(p, m.ref)
	}
	return p
}

// observed says what was observed of the machine, in words.
func (m machine) observed() string {
	if m.wait.who == "" {
		m.wait.who = "main thread"
	}
	var parts []string
	if m.refWords != "" {
		parts = append(parts, m.refWords)
	} else if m.noRef != "" {
		parts = append(parts, "no reference figure ("+m.noRef+")")
	}
	switch {
	case m.wait.ok && m.wait.longest-m.wait.excused >= 5*time.Millisecond && m.wait.capped:
		parts = append(parts, fmt.Sprintf("the runtime's %s waited %s for a CPU but ran only %s, so %s counts (a wait counts up to %d times the CPU its thread used; its process tree used %s of CPU over %s on %d CPUs)",
			m.wait.who, dur(m.wait.longest), dur(m.wait.ran), dur(m.wait.excused), waitPerRun, dur(m.wait.used), dur(m.wait.window), runtime.NumCPU()))
	case m.wait.ok && m.wait.longest-m.wait.excused >= 5*time.Millisecond:
		parts = append(parts, fmt.Sprintf("the runtime's %s waited %s for a CPU, of which %s counts (its process tree used %s of CPU over %s on %d CPUs)",
			m.wait.who, dur(m.wait.longest), dur(m.wait.excused), dur(m.wait.used), dur(m.wait.window), runtime.NumCPU()))
	case m.wait.ok:
		parts = append(parts, fmt.Sprintf("the runtime's %s waited %s for a CPU", m.wait.who, dur(m.wait.longest)))
	default:
		parts = append(parts, m.wait.notKnown)
	}
	if m.wait.ok && m.then.ok && m.then.longest >= time.Millisecond {
		last := &parts[len(parts)-1]
		switch t := m.then; {
		case t.longest-t.excused >= 5*time.Millisecond:
			*last += fmt.Sprintf(", then its %s %s more in %s, of which %s counts (its process tree used %s of CPU over %s)",
				t.who, dur(t.longest), m.thenWhat, dur(t.excused), dur(t.used), dur(t.window))
		default:
			*last += fmt.Sprintf(", then its %s %s more in %s", t.who, dur(t.longest), m.thenWhat)
		}
	}
	return strings.Join(parts, "; ")
}

// judge applies a line to a timing figure with the machine's part: within
// the line it passes; over it, it passes only when the figure less the
// machine's part is within the line. A figure still over the line without
// the machine's part, of which the machine's part is three quarters or
// more, is not judged (starved: ok false, and the tail says "could not
// judge"): on a machine that kept the runtime waiting that long, the time
// it did run is slowed too (shared cores and caches), and no counter shows
// by how much. The tail goes after the figure in the check's message.
func (m machine) judge(took, line time.Duration) (ok bool, tail string) {
	part := min(m.part(), took)
	switch m.class(took, line) {
	case withinLine:
		return true, " (" + m.observed() + ")"
	case theMachine:
		return true, fmt.Sprintf(", over the %s line, but %s: %s of it is the machine's, so this is the machine, not the runtime (%s without it)",
			dur(line), m.observed(), dur(part), dur(took-part))
	case notJudged:
		return false, fmt.Sprintf(", over the %s line, and still %s without the machine's part, but %s: the machine's part is %s of it, and %s",
			dur(line), dur(took-part), m.observed(), dur(part), notJudgedWords)
	default:
		return false, fmt.Sprintf(", over the %s line; %s, so this is the runtime, not the machine (%s without the machine's part)",
			dur(line), m.observed(), dur(took-part))
	}
}

// notJudgedWords says why a starved figure is not judged.
const notJudgedWords = "on a machine that starved the runtime that long the time it ran is slowed too, by an amount no counter shows, so conform could not judge it: run again on a quieter machine"

// runtimePart is a figure less the machine's part: the runtime's own.
func (m machine) runtimePart(took time.Duration) time.Duration { return took - min(m.part(), took) }

// judgement is what judge makes of a figure.
type judgement int

const (
	withinLine judgement = iota // within the line as it is
	theMachine                  // over it, within it without the machine's part
	notJudged                   // starved: mostly the machine's, still over
	theRuntime                  // over it without the machine's part
)

func (m machine) class(took, line time.Duration) judgement {
	switch part := min(m.part(), took); {
	case took <= line:
		return withinLine
	case took-part <= line:
		return theMachine
	case m.starved(took, line):
		return notJudged
	}
	return theRuntime
}

// conclusion is judge's conclusion without the figures, for a message
// that gave them already: ok, and words after "…: ".
func (m machine) conclusion(took, line time.Duration) (ok bool, words string) {
	part := min(m.part(), took)
	switch m.class(took, line) {
	case withinLine:
		return true, fmt.Sprintf("within the %s line", dur(line))
	case theMachine:
		return true, fmt.Sprintf("%s of it is the machine's, so this is the machine, not the runtime (%s without it)", dur(part), dur(took-part))
	case notJudged:
		return false, fmt.Sprintf("still %s without the machine's part, but the machine's part is %s of it, and %s",
			dur(took-part), dur(part), notJudgedWords)
	}
	return false, fmt.Sprintf("this is the runtime, not the machine (%s without the machine's part)", dur(took-part))
}

// starved reports whether a figure over the line, still over it without
// the machine's part, is mostly the machine's: three quarters or more.
func (m machine) starved(took, line time.Duration) bool {
	part := min(m.part(), took)
	return took > line && took-part > line && part >= 3*(took-part)
}

// figures are the figures a timing check records, for the report.
func (m machine) figures(took, line time.Duration, refRaw time.Duration) map[string]float64 {
	f := map[string]float64{"ms": ms(took), "line_ms": ms(line), "machine_ms": ms(min(m.part(), took))}
	if m.refWords != "" {
		f["reference_ms"] = ms(refRaw)
	}
	if m.wait.ok {
		f["cpu_wait_ms"] = ms(m.waited())
	}
	return f
}

// dur renders a duration for messages: 12ms, 1.35s.
func dur(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return d.String()
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Millisecond).String()
}

// calibration assembles the report's calibration from the timing checks'
// figures and the reference's readiness.
func (r *runner) calibration(results []Result) *Calibration {
	timed := false
	for _, res := range results {
		timed = timed || contains(timingIDs(), res.ID)
	}
	if r.ref == nil && !timed {
		return nil
	}
	cal := &Calibration{Reference: r.cfg.Reference, CPUs: runtime.NumCPU()}
	if r.ref != nil {
		select {
		case <-r.ref.ready:
			if r.ref.err != nil {
				cal.Error = r.ref.err.Error()
			} else {
				v := ms(r.ref.inst.readyIn)
				cal.ReferenceReadyMS = &v
			}
		default:
		}
	}
	set := func(dst **float64, res Result, key string) {
		if v, ok := res.Figures[key]; ok {
			*dst = &v
		}
	}
	for _, res := range results {
		switch res.ID {
		case startTime.ID:
			set(&cal.StartCPUWaitMS, res, "cpu_wait_ms")
		case callConcurrent.ID:
			set(&cal.ReferenceConcurrentMS, res, "reference_ms")
			set(&cal.ConcurrentCPUWaitMS, res, "cpu_wait_ms")
		case callDeadline.ID:
			set(&cal.ReferenceNextCallMS, res, "reference_ms")
			set(&cal.DeadlineCPUWaitMS, res, "cpu_wait_ms")
		}
	}
	return cal
}
