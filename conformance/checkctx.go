package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/shellquote"
)

// checkCtx is what a check's function works with, and its only door into
// the engine: calls to its instance (recorded under the check's ID), the
// fixture names, the configuration and the limits, the instances of the
// run, the reference, the master's record, and the results of the
// scenarios it requires (resultOf). The methods in this file are the door;
// a check's function uses them and nothing else of the runner: it never
// names c.r, a runner or a lock. TestChecksSeeOnlyTheirContext type-checks
// the package and fails when a check reaches past the door
// (docs/architecture.md says why a test and not a package of their own).
type checkCtx struct {
	ctx   context.Context
	r     *runner
	check *Check
	inst  *instance
}

// call calls the instance. A call that gets no answer in time is followed
// by a probe that tells a hung function from a hung runtime.
func (c *checkCtx) call(m *client.Message, timeout time.Duration, opts ...grpc.CallOption) (*client.Message, *callErr) {
	res, err := c.inst.call(c.ctx, c.check.ID, m, timeout, opts...)
	c.learn(m.FunctionName, err)
	if err != nil && err.kind == kindNoAnswer {
		c.r.hangFound(c, err)
	}
	return res, err
}

// callWithin calls the instance expecting that the deadline may pass (the
// deadline check): no hang probe follows.
func (c *checkCtx) callWithin(m *client.Message, timeout time.Duration) (*client.Message, *callErr) {
	res, err := c.inst.callExact(c.ctx, c.check.ID, m, timeout)
	c.learn(m.FunctionName, err)
	return res, err
}

// callRaw sends raw bytes to method ("" = the schema's Call).
func (c *checkCtx) callRaw(method string, req []byte, timeout time.Duration) ([]byte, *callErr) {
	res, err := c.inst.callRaw(c.ctx, c.check.ID, method, req, timeout)
	if err != nil && err.kind == kindNoAnswer {
		c.r.hangFound(c, err)
	}
	return res, err
}

// learn records what a call taught about a fixture or the service.
func (c *checkCtx) learn(fn string, err *callErr) {
	c.r.learn(c.check.ID, fn, err)
}

func (r *runner) learn(by, fn string, err *callErr) {
	role := r.roleOf(fn)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil || err.kind == kindAnswered:
		// An answer other than NOT_FOUND/UNIMPLEMENTED means the function
		// is there (the fail fixture answers an error).
		if role != "" {
			r.fixtures[role].served = true
		}
	case err.kind == kindMissing:
		f := r.fixtures[err.role]
		if f.missing == "" && !f.served {
			f.missing = err.describe() + fmt.Sprintf("; configure a function named %q that %s (docs/conformance.md#fixtures), or map the role with --function %s=NAME",
				fn, fixtureContract[err.role], err.role)
		}
	case err.kind == kindNoService:
		if r.noService == "" {
			r.noService = err.describe()
			r.noServiceBy = by
		}
	}
}

// fn is the function name serving a fixture role.
func (c *checkCtx) fn(role string) string { return c.r.cfg.fn(role) }

// seed is the run's seed, which the sweep's payloads are drawn from.
func (c *checkCtx) seed() uint64 { return c.r.cfg.Seed }

// cfg is the suite's configuration, to read.
func (c *checkCtx) cfg() *Config { return c.r.cfg }

// failed turns a failed call into the check's outcome: what describes the
// call ("the echo of 1 MiB"). A runtime's answer is a failure of the check;
// the runtime ending or hanging during the call is the check's failure too;
// an instance that had already ended before the call makes the check run
// again on a fresh one; a missing fixture or service means the check could
// not run.
func (c *checkCtx) failed(e *callErr, what string) Outcome {
	switch e.kind {
	case kindAnswered:
		return fail("%s: the runtime answered %s", what, e.statusText())
	case kindExited:
		if e := e.inst.ending(); e != nil && e.oom {
			return fail("the runtime was %s while answering %s", e.exit, what)
		}
		return fail("the runtime exited (%s) while answering %s", e.inst.exitWords(), what)
	case kindStopped:
		return fail("the runtime was stopped (SIGSTOP) while answering %s; conform ended instance #%d", what, e.inst.n)
	case kindGone:
		o := notRun("instance #%d had ended before this check's call: %s", e.inst.n, e.inst.endWords())
		o.retry = true
		return o
	case kindNoAnswer:
		return fail("no answer to %s within %s; %s", what, e.rec.end.Sub(e.rec.start).Round(time.Millisecond), hangWords(e))
	case kindHung:
		return fail("%s: the runtime had stopped answering (%s)", what, e.inst.hungWords())
	case kindTooLarge, kindConnLost:
		return fail("%s: %s", what, e.describe())
	case kindMissing:
		c.learn(e.rec.function, e)
		return notRun("%s", c.r.missingWords(e.role))
	case kindNoService:
		c.learn(e.rec.function, e)
		return notRun("%s", e.describe())
	case kindInterrupted:
		return notRun("interrupted")
	case kindBudget:
		return notRun("conform's time budget ran out during %s", what)
	case kindHarness:
		return harnessError("%s: %v", what, e.err)
	}
	return fail("%s: %v", what, e.err)
}

// stillServing checks that the instance still answers an echo call after
// what: any answer counts; the runtime ending, stopping or hanging does not.
func (c *checkCtx) stillServing(after string) *Outcome {
	m := &client.Message{FunctionName: c.fn("echo"), Payload: []byte("still serving?")}
	_, err := c.call(m, callTimeout)
	if err == nil {
		return nil
	}
	switch err.kind {
	case kindAnswered, kindTooLarge, kindMissing:
		return nil // it answered: it serves
	case kindExited, kindGone:
		o := fail("after %s the runtime exited (%s) instead of serving the next call", after, err.inst.exitWords())
		return &o
	}
	o := c.failed(err, "the echo call after "+after)
	return &o
}

// hangFound runs after a call got no answer in time: a quick probe with
// another function tells whether only that function hangs (later checks
// needing it fail at once, citing this check) or the whole runtime stopped
// answering (conform ends the instance; the remaining checks run on a
// fresh one).
func (r *runner) hangFound(c *checkCtx, e *callErr) {
	inst := e.inst
	if inst.hungWords() != "" {
		return
	}
	probe := ""
	for _, role := range []string{"echo", "none", "context"} {
		fn := r.cfg.fn(role)
		if fn != e.rec.function && !r.isMissing(role) {
			probe = fn
			break
		}
	}
	if probe == "" {
		probe = "oe-rt.conform.probe"
	}
	_, perr := inst.call(r.ctx, "hang probe after "+c.check.ID, &client.Message{FunctionName: probe, Payload: []byte("probe")}, time.Second)
	if perr == nil || perr.kind == kindAnswered || perr.kind == kindMissing || perr.kind == kindTooLarge {
		role := r.roleOf(e.rec.function)
		got := "OK"
		if perr != nil {
			got = perr.describe()
		}
		e.hang = fmt.Sprintf("instance #%d answered a call to %s within %s (%s), so the %s function itself does not answer",
			inst.n, probe, time.Second, got, e.rec.function)
		if role != "" {
			r.mu.Lock()
			if f := r.fixtures[role]; f.broken == "" {
				f.broken = fmt.Sprintf("hung in %s (no answer within %s)", c.check.ID, e.rec.end.Sub(e.rec.start).Round(time.Millisecond))
				f.brokenBy = c.check.ID
			}
			r.mu.Unlock()
		}
		return
	}
	if perr.kind != kindNoAnswer {
		return // it ended or stopped meanwhile: the watcher tells
	}
	answered := inst.answered()
	inst.markHung(fmt.Sprintf("no answer within %s to %s, nor within 1s to a probe, after %d answered calls",
		e.rec.end.Sub(e.rec.start).Round(time.Millisecond), e.rec.describeCall(), answered))
	e.hang = fmt.Sprintf("the runtime stopped answering any call (instance #%d answered %d calls, then a probe got no answer within 1s either): conform ended it and goes on with a fresh instance", inst.n, answered)
}

// hangWords says what the hang probe found after a call got no answer.
func hangWords(e *callErr) string {
	if e.hang != "" {
		return e.hang
	}
	return "the runtime did not answer in time"
}

func (r *runner) isMissing(role string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fixtures[role].missing != ""
}

// answered counts the calls the instance answered.
func (inst *instance) answered() int {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	n := 0
	for _, c := range inst.calls {
		if c.answered() {
			n++
		}
	}
	return n
}

// endWords says how an instance ended: "exited (exit status 3) while
// answering fail.status's call to fail".
func (inst *instance) endWords() string {
	e := inst.ending()
	if e == nil {
		if h := inst.hungWords(); h != "" {
			return "stopped answering (" + h + "); conform ended it"
		}
		return "is still running"
	}
	var b strings.Builder
	switch {
	case e.stopped:
		b.WriteString("was stopped (SIGSTOP or the like); conform ended it")
	case e.asked != "":
		fmt.Fprintf(&b, "was ended by conform (%s): %s", e.asked, e.exit)
	case e.oom:
		fmt.Fprintf(&b, "was %s", e.exit)
	default:
		fmt.Fprintf(&b, "exited by itself (%s)", e.exit)
	}
	lost := inst.lostCalls(e)
	switch {
	case len(lost) > 0:
		names := make([]string, 0, len(lost))
		for _, c := range lost {
			names = append(names, c.describeCall())
		}
		fmt.Fprintf(&b, " while answering %s", strings.Join(names, ", "))
	case e.during != "":
		fmt.Fprintf(&b, " during %s, with no call in flight", e.during)
	default:
		b.WriteString(" with no call in flight")
	}
	switch {
	case len(lost) > 0:
	case len(lost) < len(e.inFlight):
		// Its last answer and its exit came together.
		fmt.Fprintf(&b, ", as it answered %s", e.inFlight[len(e.inFlight)-1].describeCall())
	case e.lastDone != nil:
		fmt.Fprintf(&b, ", %s after it answered %s", e.at.Sub(e.lastDone.end).Round(time.Millisecond), e.lastDone.describeCall())
	}
	return b.String()
}

// repro renders an `oe-rt call` line for m, against the runtime started by
// hand as the report's "start it by hand" line says. A payload that does not
// fit on a command line is written to a file whose path the line names.
func (c *checkCtx) repro(m *client.Message, extra ...string) string {
	return c.r.repro(c.check.ID, m, extra...)
}

// repro is checkCtx.repro for the check id.
func (r *runner) repro(id string, m *client.Message, extra ...string) string {
	parts := []string{"oe-rt", "call", "--address", ReproAddress}
	parts = append(parts, r.schemaFlags()...)
	if m.ID != 0 {
		parts = append(parts, "--id", fmt.Sprint(m.ID))
	}
	if m.QOS != 0 {
		parts = append(parts, "--qos", fmt.Sprint(m.QOS))
	}
	if m.Topic != "" {
		parts = append(parts, "--topic", shellquote.Quote(m.Topic))
	}
	if m.Timestamp != 0 {
		parts = append(parts, "--timestamp", fmt.Sprint(m.Timestamp))
	}
	if m.FunctionInvokeID != "" {
		parts = append(parts, "--invoke-id", shellquote.Quote(m.FunctionInvokeID))
	}
	parts = append(parts, extra...)
	parts = append(parts, shellquote.Quote(m.FunctionName))
	if len(m.Payload) > 0 {
		if len(m.Payload) <= 80 && printable(m.Payload) {
			parts = append(parts, shellquote.Quote(string(m.Payload)))
		} else {
			path, err := r.payloadFile(id, m.Payload)
			if err != nil {
				return "" // no line rather than one that does not work
			}
			parts = append(parts, shellquote.Quote("@"+path))
		}
	}
	return strings.Join(parts, " ")
}

// ReproAddress is the address the report's by-hand lines use (the
// conventional port; a user may have to pick another where it is taken).
const ReproAddress = "127.0.0.1:50051"

// schemaFlags are the `oe-rt call` flags that select the schema the suite
// used.
func (r *runner) schemaFlags() []string {
	if r.cfg.ProtoFile != "" {
		return []string{"--proto", shellquote.Quote(r.cfg.ProtoFile), "--service", r.schema().Service()}
	}
	if r.cfg.Profile == ProfileBaetyl {
		return []string{"--profile", "baetyl"}
	}
	return nil
}

// payloadFile writes a payload for a reproduce line and returns its path.
func (r *runner) payloadFile(id string, payload []byte) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.artifacts == "" {
		dir, err := os.MkdirTemp("", "oe-rt-conform-")
		if err != nil {
			return "", err
		}
		r.artifacts = dir
	}
	if err := os.MkdirAll(r.artifacts, 0o755); err != nil {
		return "", err
	}
	path, err := filepath.Abs(filepath.Join(r.artifacts, id+".payload"))
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, payload, 0o644)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// missingWords says why a fixture role counts as missing.
func (r *runner) missingWords(role string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fixtures[role].missing
}

// missingWords says why a fixture role counts as missing.
func (c *checkCtx) missingWords(role string) string { return c.r.missingWords(role) }

// reference returns the reference once it is ready, waiting at most wait;
// nil and why when there is none.
func (c *checkCtx) reference(wait time.Duration) (*instance, string) { return c.r.reference(wait) }

// firstCall is how the call made as soon as the main instance was ready
// went.
func (c *checkCtx) firstCall() firstCallResult { return c.r.firstCall }

// startAgain starts the runtime once more, as the main instance was
// started, makes its first call at once and ends it (start.time's second
// measure); nil and why when there is none.
func (c *checkCtx) startAgain() (*startFigure, string) { return c.r.startAgain() }

// first is the run's first main instance, which the start checks judge.
func (c *checkCtx) first() *instance { return c.r.first }

// instances returns every instance of the run so far, in start order.
func (c *checkCtx) instances() []*instance { return c.r.allInstances() }

// instanceN returns instance n, or nil.
func (c *checkCtx) instanceN(n int) *instance { return c.r.instanceN(n) }

// watchFirst waits until the first instance has been watched for
// aliveWindow after it became ready, or it ended.
func (c *checkCtx) watchFirst() { c.r.watchFirst(c.ctx) }

// masterRequests returns the requests the instances made to the master
// API, how many more were not kept, and the addresses the master gave.
func (c *checkCtx) masterRequests() (reqs []apiRequest, more int, addresses string) {
	reqs, more = c.r.master.requests()
	return reqs, more, c.r.master.addresses()
}

// startHints says, for an instance that did not start, what the master
// API refused it and what it wrote about its configuration.
// contained reports whether the instances are containers (--image).
func (c *checkCtx) contained() bool { return c.r.contained() }

func (c *checkCtx) startHints(inst *instance) string {
	return c.r.apiHint(inst) + c.r.configHint(inst) + c.r.layoutHint(inst)
}

// limitsView is what the resource checks read of the limits: whether they
// were enforced and how, why not, and the settled figures.
type limitsView struct {
	enforced    bool
	kind        string // "cgroup v1", "cgroup v2"
	notEnforced string // why the limits asked for cannot be enforced
	figures     *resourceFigures
	suiteNote   func(load *instance) string
}

// limits returns the run's limits and resource figures (settled once the
// main instance's checks and the scenarios are done).
func (c *checkCtx) limits() limitsView {
	v := limitsView{enforced: c.r.enforced(), kind: c.r.limitKind, figures: c.r.res, suiteNote: c.r.suiteNote}
	if c.r.limitErr != nil {
		v.notEnforced = c.r.notEnforcedWords()
	}
	return v
}

// resultOf returns the result of a scenario the check requires, once the
// scenario has finished (the zero T when the check does not require it).
func resultOf[T any](c *checkCtx, s *Scenario[T]) T { return scenarioResult(c.r, s) }
