package conformance

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// The start checks judge the first instance: how it came up.

var startListen = &Check{ID: "start.listen", Level: MUST, phase: phaseStart,
	Description: "accepts gRPC connections on the address given in the environment within the start timeout",
	Hint: "Read the address from the environment (BAETYL_SERVICE_INSTANCE_ADDRESS, OPENEDGE_SERVICE_INSTANCE_ADDRESS, OPENEDGE_SERVICE_ADDRESS) before server.address, and listen before any slow work.\n" +
		"grpc-go: net.Listen(\"tcp\", addr), then go s.Serve(lis); exit non-zero when Listen fails.\n" +
		"Python grpcio: server.add_insecure_port(addr), then server.start(); check that the port was bound.\n" +
		"Node @grpc/grpc-js: server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), cb) and check the callback's error.",
	run: checkStartListen}

func checkStartListen(c *checkCtx) Outcome {
	if err := c.inst.readyErr; err != nil {
		o := fail("%v%s", err, c.startHints(c.inst))
		// What it wrote while it tried to start (a traceback, a bad
		// configuration), not only while the check looked.
		o.output = c.inst.lines(c.inst.proc.StartTime(), time.Now())
		return o
	}
	return pass("accepted a connection on %s %s after exec", c.inst.addr, c.inst.readyIn.Round(time.Millisecond))
}

// startTimeID names start.time where its Check cannot be named (an
// initialization cycle).
const startTimeID = "start.time"

var startTime = &Check{ID: startTimeID, Level: SHOULD, phase: phaseStart,
	Description: "accepts its first connection and answers its first call within 1 s of exec, not counting what the machine took (calibrated)",
	Hint: "Listen first; do slow work (importing function modules, connecting to backends) after, or on the first call of each function.\n" +
		"Python grpcio: heavy imports at module level run before the server listens. Node @grpc/grpc-js: bindAsync before requiring large modules. grpc-go: keep init() cheap.",
	run: checkStartTime}

func checkStartTime(c *checkCtx) Outcome {
	const line = time.Second
	f := startFigure{n: c.inst.n, readyIn: c.inst.readyIn, sched: c.inst.readySched, first: c.firstCall()}
	switch first := f.first; {
	case first.answered(), !first.made:
	case first.err.kind == kindNoAnswer:
		return fail("accepted its first connection %s after exec, but gave no answer to its first call (an echo, made at once, as the function manager calls) within %s",
			dur(f.readyIn), dur(first.err.rec.end.Sub(first.err.rec.start)))
	default:
		return c.failed(first.err, "the first call (an echo, made as soon as it accepted a connection)")
	}
	took, m := f.took(), f.machine()
	wait := 250 * time.Millisecond // to show its figure beside the runtime's
	if took > line {
		wait = referenceTimeout(c.cfg()) // the verdict needs it
	}
	if ref, why := c.reference(wait); ref != nil {
		m.ref = ref.readyIn
		m.refWords = fmt.Sprintf("the reference started in %s on this machine at the same moment", dur(ref.readyIn))
	} else {
		m.noRef = why
	}
	ok, tail := m.judge(took, line)
	if !ok {
		// One start over the line is measured once more: the function
		// manager starts instances again and again, and a start the
		// machine slowed (its share of a busy machine slows the time the
		// runtime ran too, which no counter shows) or that paid a first
		// start's own cost is not the runtime's usual start.
		again, why := c.startAgain()
		if again == nil {
			o := warnStart(m, took, line, fmt.Sprintf("%s%s (not measured again: %s)", f.what(), tail, why))
			o.figures = m.figures(took, line, m.ref)
			return o
		}
		return judgeTwoStarts(f, m, *again, line)
	}
	o := pass("%s%s", f.what(), tail)
	o.figures = m.figures(took, line, m.ref)
	return o
}

// warnStart is start.time's outcome for a start judged over the line.
func warnStart(m machine, took, line time.Duration, msg string) Outcome {
	if m.starved(took, line) {
		return fail("%s", msg)
	}
	return fail("%s: the function manager starts instances on demand, while a message waits: aim for under 1 s", msg)
}

// judgeTwoStarts judges start.time on the faster of two starts, each less
// its machine's part (the second has no reference figure: the reference
// started once, with the first), and gives both.
func judgeTwoStarts(first startFigure, m1 machine, second startFigure, line time.Duration) Outcome {
	took1, m2 := first.took(), second.machine()
	took2 := second.took()
	var words2 string
	switch {
	case second.first.answered():
		words2 = fmt.Sprintf("%s (%s; %s without the machine's part)", second.what(), m2.observed(), dur(m2.runtimePart(took2)))
	case second.first.err != nil:
		words2 = fmt.Sprintf("accepted its first connection %s after exec, but its first call failed: %s", dur(second.readyIn), second.first.err.describe())
	default:
		words2 = second.what()
	}
	msg := fmt.Sprintf("%s, over the %s line (%s; %s without the machine's part); started again to measure once more (instance #%d), it %s",
		first.what(), dur(line), m1.observed(), dur(m1.runtimePart(took1)), second.n, words2)
	m, took, n := m1, took1, first.n
	if second.first.answered() && m2.runtimePart(took2) < m1.runtimePart(took1) {
		m, took, n = m2, took2, second.n
	}
	ok, words := m.conclusion(took, line)
	msg += fmt.Sprintf("; judged on the faster start, #%d, %s after exec: %s", n, dur(took), words)
	var o Outcome
	if ok {
		o = pass("%s", msg)
	} else {
		o = warnStart(m, took, line, msg)
	}
	o.figures = m1.figures(took1, line, m1.ref)
	o.figures["again_ms"] = ms(took2)
	return o
}

// startFigure is one start of the runtime as start.time measures it: from
// exec to its first accepted connection, then to the answer to the call
// made at once.
type startFigure struct {
	n       int           // the instance
	readyIn time.Duration // from exec to its first accepted connection
	sched   sched         // its threads' counters then
	first   firstCallResult
}

// took is the start's figure: to the first call's answer when there was
// one.
func (f startFigure) took() time.Duration {
	if f.first.answered() {
		return max(f.readyIn, f.first.in)
	}
	return f.readyIn
}

func (f startFigure) what() string {
	if f.first.answered() {
		return fmt.Sprintf("accepted its first connection %s and answered its first call %s after exec", dur(f.readyIn), dur(f.first.in))
	}
	return fmt.Sprintf("accepted its first connection %s after exec", dur(f.readyIn))
}

// machine is the start's machine's part without a reference: the main
// thread's wait until it listened, then, while the first call was served
// (on whatever thread serves calls), the busiest thread's.
func (f startFigure) machine() machine {
	m := machine{wait: waitBetween(sched{}, f.sched, f.readyIn)}
	if f.first.answered() && f.first.in > f.readyIn && f.first.sched.ok && f.sched.ok {
		m.then = waitInFirstCall(f.sched, f.first.sched, f.first.in-f.readyIn)
		m.thenWhat = "its first call"
	}
	return m
}

// startAgain starts a fresh instance as the main one was started, makes
// its first call at once, as the function manager does, and ends it: a
// second start for start.time. nil, and why, when there is none.
func (r *runner) startAgain() (*startFigure, string) {
	// The early scenarios' instances keep their numbers, #2 and #3.
	<-r.spawned
	<-r.lifeSpawned
	if r.ctx.Err() != nil {
		return nil, "conform's time budget ran out"
	}
	inst, err, notReady := r.scenarioInstance("start again")
	switch {
	case err != nil:
		return nil, "conform could not start another instance: " + err.Error()
	case notReady != nil && budgetSpent(notReady):
		return nil, "conform's time budget ran out"
	case notReady != nil:
		return nil, fmt.Sprintf("instance #%d did not become ready: %v", inst.n, notReady)
	}
	defer inst.proc.Cleanup()
	inst.checked(startTimeID)
	f := &startFigure{n: inst.n, readyIn: inst.readyIn, sched: inst.readySched, first: r.firstCallOn(inst)}
	inst.kill(startTimeID + " was done with it")
	return f, ""
}

// firstCallOwner makes the call the function manager makes as soon as an
// instance is ready.
const firstCallOwner = "the first call"

// firstCallResult is how the first call went.
type firstCallResult struct {
	made  bool
	in    time.Duration // from exec to its answer
	err   *callErr
	sched sched // the scheduler's counters of the instance's threads at the answer
}

// answered reports whether the runtime answered the first call (any
// status: NOT_FOUND from a missing echo fixture is an answer).
func (f firstCallResult) answered() bool {
	return f.made && (f.err == nil || f.err.kind == kindAnswered || f.err.kind == kindMissing || f.err.kind == kindNoService)
}

// makeFirstCall calls the main instance as soon as it is ready, as the
// function manager does with the message it started the instance for, and
// waits for the answer up to the start timeout: start.time judges the
// wait, and no check after it pays for it.
func (r *runner) makeFirstCall(inst *instance) {
	r.firstCall = r.firstCallOn(inst)
	r.learn(firstCallOwner, r.cfg.fn("echo"), r.firstCall.err)
}

// firstCallOn makes an instance's first call, an echo, and says how it
// went.
func (r *runner) firstCallOn(inst *instance) firstCallResult {
	m := &client.Message{FunctionName: r.cfg.fn("echo"), Payload: []byte(`{"first":true}`)}
	_, err := inst.call(r.ctx, firstCallOwner, m, max(callTimeout, r.cfg.StartTimeout))
	return firstCallResult{made: true, in: time.Since(inst.proc.StartTime()), err: err, sched: readSched(inst.proc.PID())}
}

var startScope = &Check{ID: "start.scope", Level: SHOULD, phase: phaseStart,
	Description: "listens on the given address only: no other listening TCP socket, no wildcard bind",
	Hint: "Listen on the address string you were given, as it is: not \"0.0.0.0:\" + port or \"[::]:\" + port, and open no other port (a debug or metrics server) unless configured.\n" +
		"grpc-go: net.Listen(\"tcp\", addr). Python grpcio: server.add_insecure_port(addr). Node @grpc/grpc-js: server.bindAsync(addr, ...).",
	run: checkStartScope}

func checkStartScope(c *checkCtx) Outcome {
	if c.inst.ending() != nil {
		return notRun("instance #%d %s before its sockets could be read (see run.alive)", c.inst.n, c.inst.endWords())
	}
	addrs, err := launch.TreeListeners(c.inst.proc.PID())
	if err != nil {
		return harnessError("cannot read the listening sockets: %v", err)
	}
	var wrong []string
	for _, a := range addrs {
		if !c.inst.listensOn(a) {
			wrong = append(wrong, a)
		}
	}
	if len(wrong) > 0 {
		host, _, _ := net.SplitHostPort(wrong[0])
		hint := ""
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			hint = " (a wildcard bind: listen on the address given, not on every interface)"
		}
		return fail("listens on %s besides the given %s%s", strings.Join(wrong, ", "), c.inst.listen, hint)
	}
	return pass("listens on %s only", c.inst.listen)
}

var runAlive = &Check{ID: "run.alive", Level: MUST, phase: phaseEnd,
	Description: "no instance exits or stops before it is asked to",
	Hint: "Find why it ended in the output shown and the check it points to.\n" +
		"grpc-go: a panic in a handler goroutine kills the process: recover and answer codes.Internal.\n" +
		"Python: sys.exit()/os._exit() from a handler or a library. Node: an uncaught exception or unhandled rejection ends the process (Node 15+).\n" +
		"Killed by SIGKILL with no reason from conform: the kernel's OOM killer (see resources.memory).",
	run: checkRunAlive}

// aliveWindow is the least time run.alive watches the first instance for
// after it became ready, when the checks selected end sooner.
const aliveWindow = time.Second

// watchFirst waits until the first instance has been watched for
// aliveWindow after it became ready, or it ended.
func (r *runner) watchFirst(ctx context.Context) {
	first := r.first
	if wait := aliveWindow - time.Since(first.proc.StartTime().Add(first.readyIn)); wait > 0 && first.alive() {
		select {
		case <-time.After(wait):
		case <-first.watchEnd: // it ended, and the end is recorded
		case <-ctx.Done():
		}
	}
}

func checkRunAlive(c *checkCtx) Outcome {
	first := c.first()
	c.watchFirst()
	all := c.instances()
	var ended, limited []string
	for _, inst := range all {
		e := inst.ending()
		if e == nil || !e.byItself || inst.probe {
			continue
		}
		if e.limited {
			// Its enforced limits ended it: the resource checks judge that.
			limited = append(limited, fmt.Sprintf("#%d", inst.n))
			continue
		}
		see := ""
		for _, rec := range inst.lostCalls(e) {
			if !strings.Contains(rec.owner, " ") { // a check's ID, not a scenario
				see = " (see " + rec.owner + ")"
				break
			}
		}
		ended = append(ended, fmt.Sprintf("instance #%d (%s) %s, %s after it started%s",
			inst.n, inst.role, inst.endWords(), e.at.Sub(inst.proc.StartTime()).Round(time.Millisecond), see))
	}
	if len(ended) > 0 {
		return fail("%s", strings.Join(ended, "; "))
	}
	note := ""
	if len(limited) > 0 {
		note = fmt.Sprintf("; %s ended by the enforced limits (see resources.limits)", strings.Join(limited, ", "))
	}
	return pass("no instance ended by itself (%d started; the first watched for %s)%s", len(all), time.Since(first.proc.StartTime()).Round(time.Millisecond), note)
}

// start.address-aliases starts short-lived instances with only one of the
// three address variables set, one variable each, to tell which masters
// can start the runtime: OpenEdge 0.1.2's function manager sets only
// OPENEDGE_SERVICE_ADDRESS, 0.1.3–0.1.5's also
// OPENEDGE_SERVICE_INSTANCE_ADDRESS, Baetyl's (0.1.6 to 1.x) all three.

const aliasCheckID = "start.address-aliases"

var startAddressAliases = &Check{ID: aliasCheckID, Level: SHOULD, phase: phaseEnd, Requires: []Requirement{aliasScenario},
	Description: "starts with each of the three address variables alone, so that a master of every era can start it",
	Hint: "Read the first of BAETYL_SERVICE_INSTANCE_ADDRESS, OPENEDGE_SERVICE_INSTANCE_ADDRESS, OPENEDGE_SERVICE_ADDRESS that is set (Baetyl's first), then server.address.\n" +
		"grpc-go: a loop over the three names with os.LookupEnv; Python: next((os.environ[k] for k in NAMES if os.environ.get(k)), None); Node: NAMES.map(k => process.env[k]).find(Boolean).",
	run: checkAddressAliases}

// aliasScenario runs late, once the main instance's start checks are done,
// beside its call checks and the function manager's load, and is over
// before the 4 MiB and timing checks: its processes disturb no timing
// check.
var aliasScenario = &Scenario[*aliasResult]{Name: "the address-alias instances", late: true, run: runAliasScenario}

// addressAlias is one of the address variables, the master whose
// environment the instance gets with it, and the era that introduced it.
type addressAlias struct {
	variable string
	era      string
	since    string
}

// addressAliases, oldest first.
var addressAliases = []addressAlias{
	{"OPENEDGE_SERVICE_ADDRESS", convention.EraOpenEdge, "OpenEdge 0.1.2"},
	{"OPENEDGE_SERVICE_INSTANCE_ADDRESS", convention.EraOpenEdge, "OpenEdge 0.1.3–0.1.5"},
	{"BAETYL_SERVICE_INSTANCE_ADDRESS", convention.EraBaetyl, "Baetyl 0.1.6–1.x"},
}

// aliasTry is how the runtime fared with one variable alone.
type aliasTry struct {
	alias   addressAlias
	inst    *instance
	err     error // why it did not accept a connection; nil: it did
	harness error // conform could not start it
}

type aliasResult struct {
	tries       []aliasTry
	interrupted bool
	budget      bool
}

// listenElsewhere is how long an instance must listen elsewhere, and not
// on its address, before conform concludes it will not.
const listenElsewhere = 300 * time.Millisecond

func runAliasScenario(r *runner) *aliasResult {
	res := &aliasResult{}
	select {
	case <-r.schemaReady:
	case <-r.ctx.Done():
	}
	if r.ctx.Err() != nil {
		res.interrupted = r.interrupted()
		res.budget = !res.interrupted
		return res
	}
	if r.first.readyErr != nil { // read once schemaReady is closed
		return res // start.listen tells
	}
	// An instance given an address it does not read usually exits or
	// listens elsewhere at once; one that does neither is waited for as
	// the function manager waits for an instance: the start timeout. A
	// runtime still starting on a busy machine is never taken for one
	// that does not read the variable.
	timeout := r.cfg.StartTimeout
	// The three start together, each with its variable: one at a time,
	// a runtime that takes seconds to start would hold the timing checks
	// back three times as long.
	res.tries = make([]aliasTry, len(addressAliases))
	var wg sync.WaitGroup
	for i, a := range addressAliases {
		try := &res.tries[i]
		try.alias = a
		if r.ctx.Err() != nil {
			// The budget ran out (or the run was interrupted) while the
			// others started: no instance is started past it (each
			// start costs seconds on a busy machine); res says which.
			break
		}
		// Numbered one after the other, in the order of the variables;
		// each starts as soon as it has its number.
		numbered := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(func() { close(numbered) })
			defer once()
			inst, err := r.startProcess(instanceOpts{role: "alias " + a.variable, era: a.era, addrVar: a.variable, probe: true, numbered: once})
			if err != nil {
				try.harness = err
				return
			}
			inst.checked(aliasCheckID)
			try.inst = inst
			try.err = inst.awaitReady(r.ctx, timeout, inst.giveUpWhenElsewhere())
			inst.kill("start.address-aliases was done with it")
		}()
		<-numbered
	}
	wg.Wait()
	res.interrupted = r.interrupted()
	res.budget = !res.interrupted && r.ctx.Err() != nil
	return res
}

// lastWords is what an instance that ended by itself last wrote, for a
// message ("; it ended (exit status 1) and wrote \"…\""), or "".
func (inst *instance) lastWords() string {
	e := inst.ending()
	if e == nil || !e.byItself {
		return ""
	}
	ls := inst.proc.Lines(inst.proc.StartTime(), time.Now())
	for i := len(ls) - 1; i >= 0; i-- {
		if t := strings.TrimSpace(ls[i].Text); t != "" {
			if len(t) > 500 {
				t = t[:500] + "…"
			}
			return fmt.Sprintf("; it ended (%s) and wrote %q", e.exit, t)
		}
	}
	return fmt.Sprintf("; it ended (%s) and wrote nothing", e.exit)
}

// giveUpWhenElsewhere is a waitReady hook: it ends the wait once the
// instance has listened elsewhere, and not on its address, for
// listenElsewhere.
func (inst *instance) giveUpWhenElsewhere() func() error {
	var since time.Time // when it was first seen listening elsewhere only
	return func() error {
		elsewhere := inst.listensElsewhere()
		switch {
		case len(elsewhere) == 0:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= listenElsewhere:
			return fmt.Errorf("it listens on %s, not on %s%s", strings.Join(elsewhere, ", "), inst.listen, inst.r.containerListenHint())
		}
		return nil
	}
}

// listensElsewhere returns the TCP addresses the instance's processes
// listen on, when none of them is its own address.
func (inst *instance) listensElsewhere() []string {
	addrs, err := launch.TreeListeners(inst.proc.PID())
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if inst.listensOn(a) {
			return nil
		}
	}
	return addrs
}

func checkAddressAliases(c *checkCtx) Outcome {
	res := resultOf(c, aliasScenario)
	var read, unread []string
	var shown []OutputLine // what the instances that did not start wrote
	reads := map[string]bool{}
	for _, t := range res.tries {
		switch {
		case t.harness != nil:
			return harnessError("could not start an instance with %s alone: %v", t.alias.variable, t.harness)
		case t.inst == nil && res.interrupted:
			return notRun("interrupted")
		case t.inst == nil:
			// Not started: the budget ran out while the others started.
			return notRun("conform's time budget ran out before every address variable was tried")
		case t.err != nil && res.interrupted:
			return notRun("interrupted")
		case t.err != nil && res.budget:
			return notRun("conform's time budget ran out while instance #%d started with %s alone", t.inst.n, t.alias.variable)
		case t.err != nil:
			unread = append(unread, fmt.Sprintf("%s (instance #%d with it alone: %v%s)", t.alias.variable, t.inst.n, t.err, t.inst.lastWords()))
			shown = append(shown, t.inst.lines(t.inst.proc.StartTime(), time.Now())...)
		default:
			reads[t.alias.variable] = true
			read = append(read, fmt.Sprintf("%s (#%d, %s)", t.alias.variable, t.inst.n, t.inst.readyIn.Round(time.Millisecond)))
		}
	}
	switch {
	case res.interrupted:
		return notRun("interrupted")
	case res.budget && len(res.tries) < len(addressAliases):
		return notRun("conform's time budget ran out before every address variable was tried")
	case len(res.tries) < len(addressAliases):
		return notRun("the runtime did not start (see start.listen)")
	}
	// A master can start the runtime when it sets a variable the runtime
	// reads: each era's function manager sets its own and every older one.
	var can, cannot []string
	for i, a := range addressAliases {
		ok := false
		for _, older := range addressAliases[:i+1] {
			ok = ok || reads[older.variable]
		}
		if ok {
			can = append(can, a.since)
		} else {
			cannot = append(cannot, a.since)
		}
	}
	if len(unread) == 0 {
		return pass("masters of every era can start it: it accepted a connection with each address variable alone: %s", strings.Join(read, ", "))
	}
	masters := "no master can start it"
	if len(can) > 0 {
		masters = "masters that can start it: " + strings.Join(can, ", ")
	}
	if len(cannot) > 0 {
		masters += "; not " + strings.Join(cannot, ", ")
	}
	why := ""
	if len(cannot) == 0 {
		why = " — only because every later master still sets " + addressAliases[0].variable + " too"
	}
	readWords := "none of them alone"
	if len(read) > 0 {
		readWords = strings.Join(read, ", ")
	}
	o := fail("%s%s. It starts with %s; not with %s. Read the first of %s that is set",
		masters, why, readWords, strings.Join(unread, "; "), strings.Join(convention.AddressEnv, ", "))
	o.output = shown
	return o
}

// configWords recognise a line in which a runtime complains about its
// configuration or its address.
var configWords = regexp.MustCompile(`(?i)service\.ya?ml|config|no such file|address|(^|\s)-c(\s|$)`)

// configHint, when the configuration was given as the master gives it and
// the instance did not start, says so: what the runtime wrote about it,
// and where a runtime the master starts must look.
func (r *runner) configHint(inst *instance) string {
	if r.cfg.ConfigFile == "" {
		return ""
	}
	saw := ""
	lines := inst.proc.Lines(inst.proc.StartTime(), time.Now())
	for i := len(lines) - 1; i >= 0; i-- {
		if configWords.MatchString(lines[i].Text) {
			t := lines[i].Text
			if len(t) > 200 {
				t = t[:200] + "…"
			}
			saw = fmt.Sprintf("; it wrote %q", t)
			break
		}
	}
	if saw == "" && len(lines) > 0 {
		return "" // it complained about something else
	}
	if saw == "" {
		saw = "; it wrote nothing"
	}
	return fmt.Sprintf("%s. conform gave the configuration as the master does: at %s in the runtime's working directory (a link to %s), with no -c. "+
		"A runtime the master starts must find it there by itself: read etc/baetyl/service.yml by default when any of "+
		"BAETYL_SERVICE_INSTANCE_ADDRESS, BAETYL_SERVICE_INSTANCE_NAME, BAETYL_SERVICE_NAME is set, else etc/openedge/service.yml",
		saw, configPath(string(r.cfg.Profile)), r.cfg.ConfigFile)
}

// apiHint says which requests of the instance the master API refused, if
// any: a runtime that gives up without the API does not start under the
// master.
func (r *runner) apiHint(inst *instance) string {
	var its []apiRequest
	reqs, _ := r.master.requests()
	for _, q := range reqs {
		if q.inst == inst.n {
			its = append(its, q)
		}
	}
	if len(its) == 0 {
		return ""
	}
	return fmt.Sprintf("; before that it asked the master API, which refused: %s (an instance has no token; see rights.master-api)", listRequests(its, 0))
}
