package conformance

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// The shutdown checks judge a fresh instance of their own, stopped as the
// master stops one: SIGTERM to the runtime's PID, up to the grace period,
// then SIGKILL to the PID. They read the result of one shared scenario.

var shutdownScenario = &Scenario[*shutdownResult]{Name: "the shutdown scenario", run: runShutdownScenario}

// shutdownResult is what the shutdown scenario observed.
type shutdownResult struct {
	harnessErr  error     // conform could not start the instance
	inst        *instance // the instance it stopped
	notReady    error
	endedBefore string // it ended by itself before SIGTERM: how
	interrupted bool

	drainRan     bool
	drainMissing string        // the sleep fixture is missing: what it answered
	drainEarly   string        // the sleep returned before its time, before SIGTERM
	drainErr     *callErr      // the in-flight call's failure
	drainAfter   time.Duration // from SIGTERM to the in-flight call's end
	drainEnded   bool          // the in-flight call ended (within 2 s of the runtime's end)
	drainTook    time.Duration // the in-flight call's own time, from its start to its end
	drainLate    bool          // the call ended before SIGTERM could be sent

	sent      time.Time
	exited    bool          // exited within the grace period
	pid1      string        // container mode: the first process, when it did not catch SIGTERM
	pid1Known bool          // container mode: whether it catches SIGTERM could be read
	exit      launch.Exit   // how it ended
	took      time.Duration // from SIGTERM to its exit
	survivors []launch.Proc // processes of its launch alive after it ended
	from, to  time.Time
}

// drainSleep is the sleep of the call kept in flight across SIGTERM.
const drainSleep = time.Second

const scenarioOwner = "the shutdown scenario"

func runShutdownScenario(r *runner) *shutdownResult {
	defer r.shutdownSpawned() // however it returns
	res := &shutdownResult{from: time.Now()}
	defer func() { res.to = time.Now() }()
	select {
	case <-r.schemaReady:
	case <-r.ctx.Done():
	}
	if r.ctx.Err() != nil {
		res.interrupted = true
		return res
	}
	inst, err, notReady := r.scenarioInstance("shutdown", r.shutdownSpawned)
	res.inst, res.harnessErr, res.notReady = inst, err, notReady
	if err != nil || notReady != nil {
		return res
	}
	defer inst.proc.Cleanup()
	drain := &drainCall{done: make(chan struct{})}
	if !r.isMissing("sleep") {
		res.drainRan = true
		drain.start(r, inst)
		defer drain.record(r, res) // the call ends with the instance (at most a bound later)
		// Let the call reach the runtime before the signal, and make sure
		// it is still in flight when the signal goes: 200 ms, and while
		// the machine keeps the runtime's threads waiting for a CPU
		// (patience.go), another 200 ms, up to 600 ms in all.
		drain.endedBeforeSignal = inst.letCallArrive(r.ctx, drain.done)
	} else {
		close(drain.done)
	}
	if r.ctx.Err() != nil {
		res.interrupted = true
		inst.kill("the run was interrupted")
		return res
	}
	if inst.ending() != nil {
		res.endedBefore = inst.endWords()
		return res
	}

	r.stopAsMaster(inst, res)
	if res.drainRan {
		// The call in flight ends with the runtime, or is answered by
		// what the runtime left running, as under the master.
		select {
		case <-drain.done:
		case <-time.After(2 * time.Second):
		}
	}
	// What the master would have left running: the rest of the launch.
	time.Sleep(50 * time.Millisecond) // let descendants follow their parent
	res.survivors = inst.proc.Survivors()
	inst.proc.Cleanup()
	return res
}

// drainCall is the shutdown scenario's sleep call, kept in flight across
// SIGTERM.
type drainCall struct {
	done              chan struct{} // closed when the call ended
	started           time.Time
	end               time.Time // written by the call's goroutine before done is closed
	err               *callErr  // likewise
	endedBeforeSignal bool      // the call ended before conform could send SIGTERM
}

// start makes the call of drainSleep in a goroutine of its own.
func (d *drainCall) start(r *runner, inst *instance) {
	m := &client.Message{FunctionName: r.cfg.fn("sleep"), Payload: []byte(fmt.Sprintf(`{"ms":%d}`, drainSleep.Milliseconds()))}
	d.started = time.Now()
	go func() {
		defer close(d.done)
		_, d.err = inst.call(r.ctx, scenarioOwner, m, r.cfg.Grace+5*time.Second)
		d.end = time.Now()
		r.learn(scenarioOwner, m.FunctionName, d.err)
	}()
}

// record waits for the call to end (2 s at most) and copies how it ended
// into res: by the call's own clock, and by the clock of SIGTERM.
func (d *drainCall) record(r *runner, res *shutdownResult) {
	select {
	case <-d.done:
	case <-time.After(2 * time.Second):
		return
	}
	switch {
	case d.err == nil:
	case d.err.kind == kindMissing:
		res.drainMissing = r.missingWords("sleep")
	case d.err.kind == kindNoService:
		res.drainMissing = d.err.describe()
	default:
		res.drainErr = d.err
	}
	res.drainEnded, res.drainTook = true, d.end.Sub(d.started)
	if !res.sent.IsZero() {
		res.drainAfter = d.end.Sub(res.sent)
	}
	// It ended before the signal: letCallArrive saw it, or its answer
	// came between that look and the signal.
	if (d.endedBeforeSignal || !res.sent.IsZero() && d.end.Before(res.sent)) && d.err == nil {
		if took := d.end.Sub(d.started); took < drainSleep {
			res.drainEarly = fmt.Sprintf("sleep %d ms returned after %s, before SIGTERM could be sent: the sleep fixture must wait the time asked, so nothing was in flight to drain",
				drainSleep.Milliseconds(), took.Round(time.Millisecond))
		} else {
			res.drainLate = true
		}
	}
}

// stopAsMaster stops the instance as the master does — SIGTERM to the
// PID, the grace period, then SIGKILL to the PID — and records in res
// when the signal went, whether and how the runtime exited, and (in
// container mode) why SIGTERM may not have reached it.
func (r *runner) stopAsMaster(inst *instance, res *shutdownResult) {
	// As the master stops an instance: SIGTERM to the PID only.
	inst.ask("SIGTERM (shutdown scenario)")
	res.sent = time.Now()
	_ = inst.proc.Signal(syscall.SIGTERM)
	timer := time.NewTimer(r.cfg.Grace)
	select {
	case <-inst.proc.Done():
		res.exited = true
	case <-timer.C:
	case <-r.parent.Done():
		res.interrupted = true
	}
	timer.Stop()
	if !res.exited && r.contained() {
		// As PID 1 of its namespace, a process that does not catch
		// SIGTERM does not get it at all.
		if caught, known := sigtermCaught(inst.proc.PID()); known {
			res.pid1Known = true
			if !caught {
				res.pid1 = pid1Words(inst.proc.PID())
			}
		}
	}
	if !res.exited {
		// After the grace period, SIGKILL to the PID, as the master does.
		_ = inst.proc.Signal(syscall.SIGKILL)
		select {
		case <-inst.proc.Done():
		case <-time.After(2 * time.Second):
		}
	}
	if e, ok := inst.proc.ExitStatus(); ok {
		res.exit = e
		res.took = e.At.Sub(res.sent)
		if e.At.Before(res.sent) {
			// It was gone before the signal: it did not handle it.
			inst.endedUnasked()
			res.endedBefore = inst.endWords()
			res.exited = false
		}
	}
}

// unusable says why the scenario's result cannot be judged by a check, or
// nil. The first check (shutdown.sigterm) carries a failure to become
// ready; the others point to it.
func (s *shutdownResult) unusable(id string) *Outcome {
	var o Outcome
	switch {
	case s.interrupted:
		o = notRun("interrupted")
	case s.harnessErr != nil:
		o = harnessError("could not start a fresh instance for the shutdown checks: %v", s.harnessErr)
	case budgetSpent(s.notReady):
		o = notRun("conform's time budget ran out while instance #%d for the shutdown checks started", s.inst.n)
	case s.notReady != nil && id == "shutdown.sigterm":
		o = fail("a fresh instance (#%d) for the shutdown checks did not become ready: %v", s.inst.n, s.notReady)
	case s.notReady != nil:
		o = notRun("the shutdown instance did not become ready (see shutdown.sigterm)")
	case s.endedBefore != "":
		o = notRun("instance #%d %s, before SIGTERM was sent (see run.alive)", s.inst.n, s.endedBefore)
	default:
		return nil
	}
	return &o
}

func (c *checkCtx) shutdown() *shutdownResult {
	return resultOf(c, shutdownScenario)
}

// scenarioOutput shows what the shutdown instance wrote during the
// scenario.
func (s *shutdownResult) output() []OutputLine {
	if s.inst == nil {
		return nil
	}
	return s.inst.lines(s.from, s.to)
}

var shutdownSigterm = &Check{ID: "shutdown.sigterm", Level: MUST, phase: phaseShutdown, Requires: []Requirement{shutdownScenario},
	Description: "after SIGTERM to its PID the runtime exits by itself within the grace period ({grace})",
	Hint: "Handle SIGTERM: stop accepting calls, let those in flight finish, exit.\n" +
		"grpc-go: signal.Notify(ch, syscall.SIGTERM), then s.GracefulStop() and return from main.\n" +
		"Python grpcio: signal.signal(SIGTERM, handler) on the main thread (handlers only run there), then server.stop(grace).wait().\n" +
		"Node @grpc/grpc-js: process.on(\"SIGTERM\", () => server.tryShutdown(() => process.exit(0))). A shell wrapper must exec the runtime.",
	run: checkShutdownSigterm}

func checkShutdownSigterm(c *checkCtx) Outcome {
	s := c.shutdown()
	if o := s.unusable(c.check.ID); o != nil {
		return s.withOutput(*o)
	}
	switch {
	case !s.exited && s.pid1 != "":
		return s.withOutput(fail("still running %s after SIGTERM to its container's first process, %s, which does not catch SIGTERM: %s; conform sent SIGKILL, as the engine does at the grace",
			c.cfg().Grace, s.pid1, pid1NoSigterm))
	case !s.exited:
		return s.withOutput(fail("still running %s after SIGTERM to its PID: handle SIGTERM, stop accepting calls, finish those in flight and exit; conform sent SIGKILL", c.cfg().Grace))
	case s.exit.Signal == syscall.SIGTERM && s.drained():
		// It handled SIGTERM — drained its call in flight — and then ended
		// by re-raising it with the default action (a common idiom):
		// exiting was its own doing. shutdown.exit-code says how it ended.
		return pass("drained its call in flight, then ended by its own re-raised SIGTERM %s after SIGTERM (%s; see shutdown.exit-code)", s.took.Round(time.Millisecond), s.exit)
	case s.exit.Signal == syscall.SIGTERM:
		return s.withOutput(fail("%s %s after SIGTERM instead of handling it: calls in flight are lost that way", s.exit, s.took.Round(time.Millisecond)))
	case s.exit.Signal != 0:
		return s.withOutput(fail("%s %s after SIGTERM instead of exiting", s.exit, s.took.Round(time.Millisecond)))
	}
	return pass("exited by itself %s after SIGTERM (%s)", s.took.Round(time.Millisecond), s.exit)
}

var shutdownExitCode = &Check{ID: "shutdown.exit-code", Level: SHOULD, phase: phaseShutdown, Requires: []Requirement{shutdownScenario},
	Description: "exit status 0 after SIGTERM",
	Hint: "Exit 0 after a graceful stop.\n" +
		"grpc-go: return from main after GracefulStop, not log.Fatal/os.Exit(1) on grpc.ErrServerStopped. Python: sys.exit(0) once server.stop(...) finished. Node: process.exit(0) in tryShutdown's callback.",
	run: checkShutdownExitCode}

func checkShutdownExitCode(c *checkCtx) Outcome {
	s := c.shutdown()
	if o := s.unusable(c.check.ID); o != nil {
		return *o
	}
	if !s.exited {
		return notRun("the runtime did not exit within %s of SIGTERM (see shutdown.sigterm)", c.cfg().Grace)
	}
	if s.exit.Signal != 0 || s.exit.Code != 0 {
		return s.withOutput(fail("ended with %s after SIGTERM, want exit status 0", s.exit))
	}
	return pass("exit status 0")
}

var shutdownDrain = &Check{ID: "shutdown.drain", Level: MUST, phase: phaseShutdown, Needs: []string{"sleep"}, Requires: []Requirement{shutdownScenario},
	Description: "a call in flight when SIGTERM arrives completes successfully",
	Hint: "Stop gracefully, not forcefully.\n" +
		"grpc-go: GracefulStop() (Stop() cancels calls in flight).\n" +
		"Python grpcio: server.stop(grace) with a grace period, then wait on the event it returns; server.stop(None) aborts the calls in flight — Baetyl's Python runtime passes None unless server.timeout is set.\n" +
		"Node @grpc/grpc-js: tryShutdown(cb) (forceShutdown() cancels them).",
	run: checkShutdownDrain}

func checkShutdownDrain(c *checkCtx) Outcome {
	s := c.shutdown()
	if o := s.unusable(c.check.ID); o != nil {
		return *o
	}
	switch {
	case s.drainMissing != "":
		return notRun("%s", s.drainMissing)
	case !s.drainRan:
		return notRun("%s", c.missingWords("sleep"))
	case s.drainEarly != "":
		return s.withOutput(fail("%s", s.drainEarly))
	case s.drainLate:
		return notRun("the %s sleep ended before conform could send SIGTERM (conform itself was delayed): nothing was in flight to drain; run again", drainSleep)
	case s.drainErr != nil && s.drainErr.kind == kindExited:
		return s.withOutput(fail("the %s call in flight when SIGTERM arrived was dropped: the runtime exited (%s) %s after SIGTERM without answering it", drainSleep, s.exit, s.took.Round(time.Millisecond)))
	case s.drainErr != nil && s.drainErr.kind == kindAnswered:
		return s.withOutput(fail("the %s call in flight when SIGTERM arrived failed: the runtime answered %s", drainSleep, s.drainErr.statusText()))
	case s.drainErr != nil:
		return s.withOutput(fail("the %s call in flight when SIGTERM arrived failed: %s", drainSleep, s.drainErr.describe()))
	case s.drainEnded && s.drainTook < drainSleep:
		// Judged by the call's own clock: an OK that came before the
		// sleep's time is a call cut short, not drained.
		return s.withOutput(fail("the %s sleep in flight when SIGTERM arrived returned OK %s into its time, %s after SIGTERM: cut short, not drained (a sleep answered OK must take the time asked)",
			drainSleep, s.drainTook.Round(time.Millisecond), s.drainAfter.Round(time.Millisecond)))
	}
	return pass("the %s call in flight completed, %s after SIGTERM", drainSleep, s.drainAfter.Round(time.Millisecond))
}

var shutdownNoOrphans = &Check{ID: "shutdown.no-orphans", Level: MUST, phase: phaseShutdown, Requires: []Requirement{shutdownScenario},
	Description: "no process the runtime started outlives it",
	Hint:        "End what you start before exiting: exec the runtime from wrapper scripts; Python: terminate() and wait() your Popen children in the SIGTERM handler, no start_new_session; Node: child.kill(), no detached + unref(); grpc-go: exec.CommandContext cancelled at shutdown; no setsid, nohup or daemonising.",
	run:         checkShutdownOrphans}

func checkShutdownOrphans(c *checkCtx) Outcome {
	s := c.shutdown()
	if o := s.unusable(c.check.ID); o != nil {
		return *o
	}
	if len(s.survivors) > 0 {
		var each []string
		for _, p := range s.survivors {
			each = append(each, fmt.Sprintf("pid %d (`%s`)", p.Pid, p.Cmdline))
		}
		how := "exited"
		if !s.exited {
			how = "was killed"
		}
		return s.withOutput(fail("under the master, %s would have kept running after the runtime %s; conform ended %s",
			strings.Join(each, ", "), how, plural(len(each), "it", "them")))
	}
	return pass("no process of the runtime outlived it")
}

// drained reports whether the call in flight at SIGTERM completed OK
// after its full time.
func (s *shutdownResult) drained() bool {
	return s.drainRan && s.drainEnded && s.drainErr == nil && s.drainMissing == "" && s.drainEarly == "" && !s.drainLate && s.drainTook >= drainSleep
}

func (s *shutdownResult) withOutput(o Outcome) Outcome {
	o.output = s.output()
	return o
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
