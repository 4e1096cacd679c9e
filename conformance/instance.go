package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// instance is one started runtime: its process, its connection, its life
// (started, ready, ended and why) and the record of every call conform made
// to it.
type instance struct {
	r      *runner
	n      int    // 1-based, in start order
	role   string // "main", "shutdown", "main (restart 1)", "alias OPENEDGE_SERVICE_ADDRESS", …
	proc   runtimeproc.Process
	addr   string // the address conform dials
	listen string // the address it was told to listen on (addr, natively)
	conn   *grpc.ClientConn
	cli    *client.Client

	// probe: an instance a check starts to see whether it starts, and
	// ends itself; its end is that check's to judge, not run.alive's.
	probe bool

	readyIn    time.Duration // from exec to the connection opening
	readyErr   error
	readySched sched // the scheduler's counters of its threads when it became ready (the first main instance)

	mu       sync.Mutex
	calls    []*callRecord
	inFlight map[*callRecord]context.CancelCauseFunc
	checks   []string // IDs of the checks that ran on it
	asked    string   // why conform stopped it ("" while it was not asked to)
	askedAt  time.Time
	current  string // the check running on it now
	end      *instanceEnd
	hung     string // set when it stopped answering: what found it
	watchEnd chan struct{}
}

// instanceEnd is how an instance ended, as conform observed it.
type instanceEnd struct {
	at       time.Time
	exit     string // launch.Exit's words: "exit status 3", "killed by SIGKILL"
	byItself bool   // it ended without being asked
	asked    string // why conform stopped it, when it did
	stopped  bool   // conform found it stopped (SIGSTOP)
	inFlight []*callRecord
	lastDone *callRecord // the last call that ended before it did
	during   string      // the check that was running on it
	oom      bool        // the kernel's OOM killer killed it (exit says so)
	limited  bool        // it ended by itself under its enforced limits: killed, or refused a thread
}

// callRecord is one call conform made: every call is on a record.
type callRecord struct {
	inst     int
	seq      int    // 1-based: the instance's calls in the order they were made
	owner    string // check ID, or the phase or scenario that made it
	function string // FunctionName, or the method for raw calls
	start    time.Time
	end      time.Time
	code     codes.Code
	message  string
	kind     callKind
	reqBytes int
}

// callKind says where a call's outcome came from.
type callKind int

const (
	kindOK          callKind = iota
	kindAnswered             // the runtime answered a non-OK status
	kindExited               // the process ended while the call was in flight
	kindGone                 // the instance had already ended before the call
	kindStopped              // the process was stopped (SIGSTOP) while the call was in flight
	kindNoAnswer             // no answer within conform's deadline
	kindConnLost             // the connection broke while the process kept running
	kindHung                 // the instance had stopped answering (found by an earlier call)
	kindTooLarge             // the runtime's reply exceeded what conform accepts
	kindMissing              // a fixture role's function answered NOT_FOUND/UNIMPLEMENTED
	kindNoService            // the service (or method) is not served at all
	kindInterrupted          // the run was interrupted
	kindBudget               // conform's time budget ran out
	kindHarness              // conform itself failed (its own send limit, …)
)

// callErr is a failed call, classified.
type callErr struct {
	kind     callKind
	rec      *callRecord
	inst     *instance
	status   *status.Status
	replyLen int    // kindTooLarge: the size of the reply
	role     string // kindMissing: the fixture role
	hang     string // kindNoAnswer: what the hang probe found
	err      error
}

func (e *callErr) Error() string { return e.describe() }

// statusText renders the runtime's answer: "NOT_FOUND: no function x".
func (e *callErr) statusText() string { return statusString(e.status) }

// describe says in words what happened to the call.
func (e *callErr) describe() string {
	switch e.kind {
	case kindAnswered:
		return "answered " + e.statusText()
	case kindExited:
		return fmt.Sprintf("the runtime exited (%s) while the call was in flight", e.inst.exitWords())
	case kindGone:
		return fmt.Sprintf("instance #%d had already ended (%s)", e.inst.n, e.inst.exitWords())
	case kindStopped:
		return "the runtime was stopped (SIGSTOP) while the call was in flight"
	case kindNoAnswer:
		return fmt.Sprintf("no answer within %s", e.rec.end.Sub(e.rec.start).Round(time.Millisecond))
	case kindConnLost:
		return "the connection to the runtime broke while it kept running: " + e.statusText()
	case kindHung:
		return "the runtime had stopped answering (" + e.inst.hungWords() + ")"
	case kindTooLarge:
		return fmt.Sprintf("the runtime answered with a %s reply, more than conform accepts (%s: the runtime's %s limit plus a margin)",
			size(int64(e.replyLen)), size(int64(e.inst.r.recvLimit())), size(int64(e.inst.r.cfg.maxMessageSize())))
	case kindMissing:
		return fmt.Sprintf("the runtime does not serve the %s fixture: function %q answered %s", e.role, e.rec.function, e.statusText())
	case kindNoService:
		return fmt.Sprintf("the runtime does not serve %s: it answered %s", e.inst.cli.Schema().FullMethod(), e.statusText())
	case kindInterrupted:
		return "interrupted"
	case kindBudget:
		return "conform's time budget ran out"
	case kindHarness:
		return "conform could not make the call: " + e.err.Error()
	}
	return e.err.Error()
}

// startInstance starts the runtime on a free port and waits until it
// accepts a connection, the start timeout passes, or it ends. The instance
// is returned even when it did not become ready (readyErr says why); err
// means the harness could not start it at all.
func (r *runner) startInstance(role string, spawned ...func()) (*instance, error) {
	told := func() {
		for _, f := range spawned {
			f()
		}
	}
	inst, err := r.startProcess(instanceOpts{role: role, numbered: told})
	told() // it could not be numbered: it will not be started
	if err != nil {
		return nil, err
	}
	if inst.awaitReady(r.ctx, r.cfg.StartTimeout, nil) == nil {
		r.log.Debug("instance ready", "n", inst.n, "after", inst.readyIn)
	}
	return inst, nil
}

// scenarioInstance starts a fresh instance for a scenario: err when
// conform could not start it, notReady when it did not become ready (it is
// then ended). The caller ends a ready one (proc.Cleanup).
func (r *runner) scenarioInstance(role string, spawned ...func()) (inst *instance, err, notReady error) {
	inst, err = r.startInstance(role, spawned...)
	if err != nil {
		return nil, err, nil
	}
	if inst.readyErr != nil {
		inst.kill("it did not become ready")
		return inst, nil, inst.readyErr
	}
	return inst, nil, nil
}

// budgetSpent reports whether a wait for an instance ended because the
// run's context did (its time budget, or an interruption the caller checks
// first), not because of the runtime: a readiness wait reports the
// runtime's own failures as *runtimeproc.NotReadyError or an exit.
func budgetSpent(notReady error) bool {
	return errors.Is(notReady, context.DeadlineExceeded) || errors.Is(notReady, context.Canceled)
}

// instanceOpts says how to start an instance, beyond the configuration.
type instanceOpts struct {
	role string
	// era is the master whose environment and working directory the
	// instance gets ("" = the profile's).
	era string
	// addrVar, when set, is the only one of the three address variables
	// set (start.address-aliases).
	addrVar string
	probe   bool
	// config, when set, replaces the runtime's configuration file in its
	// working directory, and args, when set, its arguments
	// (config.baetyl-forms).
	config string
	args   []string
	// numbered, when set, is called once the instance has its number,
	// before its process starts: an instance started after it may start
	// at once and gets a higher number, whatever the scheduler does.
	// (spawned callbacks: each must do its work once, however often
	// called.)
	numbered func()
}

// startProcess starts the runtime as the master of the era starts an
// instance, and connects to it, without waiting for it to be ready.
func (r *runner) startProcess(o instanceOpts) (*instance, error) {
	addr, err := r.listenAddress(r.launcher, !r.contained())
	if err != nil {
		return nil, err
	}
	if o.era == "" {
		o.era = string(r.cfg.Profile)
	}
	r.mu.Lock()
	r.nextN++
	n := r.nextN
	r.mu.Unlock()
	if o.numbered != nil {
		o.numbered()
	}
	name := instanceName(r.cfg, n)
	if r.contained() {
		ci, err := r.containerInstance(o, name, addr)
		if err != nil {
			return nil, err
		}
		return r.track(o, n, ci)
	}
	in, dir, err := r.master.instanceWith(o.era, o.config, name, addr)
	if err != nil {
		return nil, err
	}
	env := convention.InstanceEnv(r.baseEnv, in, r.cfg.Env)
	if o.addrVar != "" {
		env = onlyAddress(env, o.addrVar, addr)
	}
	spec := launch.Spec{
		Path:  r.master.entry(o.era, dir, r.cfg.Command[0]), // absolute, or a name looked up in PATH (runtimeproc.Resolve)
		Args:  r.cfg.Command[1:],
		Argv0: argv0(o.era, name),
		Dir:   dir,
		Env:   env,
	}
	if o.args != nil {
		spec.Args = o.args
	}
	spec.Limits = r.limits  // one cgroup per instance, as a container
	spec.MasterGroup = true // in the master's process group (run.process-group)
	return r.track(o, n, runtimeproc.Instance{Name: name, Listen: addr, Spec: spec})
}

// track starts an instance through the runtime's launcher and records it.
func (r *runner) track(o instanceOpts, n int, in runtimeproc.Instance) (*instance, error) {
	inst, err := r.spawn(r.launcher, n, o.role, in, r.schema())
	if err != nil {
		return nil, err
	}
	inst.probe = o.probe
	r.mu.Lock()
	// In the order of their numbers, which is the order they were started
	// in, though instances start side by side.
	i := sort.Search(len(r.instances), func(i int) bool { return r.instances[i].n > inst.n })
	r.instances = slices.Insert(r.instances, i, inst)
	r.mu.Unlock()
	return inst, nil
}

// spawn starts an instance through the launcher and connects to it: the
// one way conform starts anything, the runtime (r.launcher) or its
// reference (always native: it measures this machine).
func (r *runner) spawn(l runtimeproc.Launcher, n int, role string, in runtimeproc.Instance, schema *client.Schema) (*instance, error) {
	proc, addr, err := l.Launch(in)
	if err != nil {
		return nil, err
	}
	inst := &instance{r: r, n: n, role: role, proc: proc, addr: addr, listen: in.Listen, inFlight: map[*callRecord]context.CancelCauseFunc{}, watchEnd: make(chan struct{})}
	r.log.Debug("started instance", "n", inst.n, "role", role, "pid", proc.PID(), "address", addr)
	go inst.watch()
	conn, err := client.Dial(addr, client.Options{DialOptions: append(runtimeproc.DialOptions(),
		// Replies up to the runtime's limit plus a margin: a larger one is
		// the runtime's doing, recognised by this exact limit, and never
		// buffered whole.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(r.recvLimit())),
	)})
	if err != nil {
		inst.kill("conform could not connect to it")
		return nil, err
	}
	inst.conn = conn
	inst.cli = client.New(conn, schema)
	return inst, nil
}

// listenAddress is a free address from l for an instance: when onHost
// (not in a container, where every instance listens on the same address
// in a network namespace of its own), never one given to another instance
// of the run: instances start side by side, and a port found free and
// closed again may be found free again before the runtime given it
// listens.
func (r *runner) listenAddress(l runtimeproc.Launcher, onHost bool) (string, error) {
	for try := 1; ; try++ {
		addr, err := l.ListenAddress()
		if err != nil || !onHost || try == 10 {
			return addr, err
		}
		r.mu.Lock()
		dup := r.given[addr]
		r.given[addr] = true
		r.mu.Unlock()
		if !dup {
			return addr, nil
		}
	}
}

// instanceName is what the function manager would call instance n:
// <service>.<function>.<n>.
func instanceName(cfg *Config, n int) string {
	return fmt.Sprintf("%s.%s.%d", serviceName, cfg.fn("echo"), n)
}

// argv0 is argv[0] as the master of the era gives it: Baetyl's the
// instance's name, OpenEdge 0.1.2's the service's.
func argv0(era, name string) string {
	if era == convention.EraBaetyl {
		return name
	}
	return serviceName
}

// onlyAddress leaves only one of the address variables in env.
func onlyAddress(env []string, keep, addr string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !contains(convention.AddressEnv, k) {
			out = append(out, kv)
		}
	}
	return append(out, keep+"="+addr)
}

// watch notices the process ending or being stopped, records it, and ends
// the calls in flight at once with the cause.
func (inst *instance) watch() {
	defer close(inst.watchEnd)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-inst.proc.Done():
			inst.ended(false)
			return
		case <-t.C:
			if inst.proc.Stopped() {
				inst.ended(true)
				inst.kill("it was stopped (SIGSTOP)")
				return
			}
		}
	}
}

var (
	errStopped = errors.New("the instance was stopped")
)

// ended records the end of the instance (or that it was found stopped) and
// cancels the calls in flight.
func (inst *instance) ended(stopped bool) {
	now := time.Now()
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.end != nil {
		return
	}
	e := &instanceEnd{at: now, stopped: stopped, asked: inst.asked, byItself: inst.asked == "", during: inst.current}
	if x, ok := inst.proc.ExitStatus(); ok && !stopped {
		e.at = x.At
		e.exit, e.oom, e.limited = inst.exitText(x, inst.asked == "")
	}
	if stopped {
		e.exit = "stopped by a signal (SIGSTOP or the like)"
	}
	for rec, cancel := range inst.inFlight {
		e.inFlight = append(e.inFlight, rec)
		// A stopped runtime answers nothing: its calls end now. A call in
		// flight when the runtime exited is left to end by itself: a
		// process the runtime started may still answer it (the master
		// would let it), and if none does, the broken connection ends it.
		if stopped {
			cancel(errStopped)
		}
	}
	for _, rec := range inst.calls {
		if !rec.end.IsZero() && rec.end.Before(e.at) && (e.lastDone == nil || rec.end.After(e.lastDone.end)) {
			e.lastDone = rec
		}
	}
	inst.end = e
}

// kill ends the instance at once, recording why conform did it.
func (inst *instance) kill(why string) {
	inst.ask(why)
	if inst.conn != nil {
		inst.conn.Close()
	}
	inst.proc.Kill()
	<-inst.watchEndOrTimeout(2 * time.Second)
}

// stop ends the instance as the master would, SIGTERM then SIGKILL after
// grace, recording that conform asked; then everything of its launch is
// ended.
func (inst *instance) stop(why string, grace time.Duration) {
	inst.ask(why)
	if inst.conn != nil {
		inst.conn.Close()
	}
	inst.proc.Terminate(grace)
	inst.proc.Cleanup()
	<-inst.watchEndOrTimeout(2 * time.Second)
}

func (inst *instance) watchEndOrTimeout(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-inst.watchEnd:
		case <-time.After(d):
		}
		close(ch)
	}()
	return ch
}

// alive reports whether the instance can take calls.
func (inst *instance) alive() bool {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.end == nil && inst.hung == "" && inst.readyErr == nil
}

func (inst *instance) ending() *instanceEnd {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.end
}

// exitWords says how the instance ended, or that it still runs.
func (inst *instance) exitWords() string {
	if e := inst.ending(); e != nil {
		return e.exit
	}
	if x, ok := inst.proc.ExitStatus(); ok {
		inst.mu.Lock()
		byItself := inst.asked == ""
		inst.mu.Unlock()
		words, _, _ := inst.exitText(x, byItself)
		return words
	}
	return "still running"
}

func (inst *instance) hungWords() string {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.hung
}

// awaitReady waits for the instance to be ready (waitReady) and records
// the outcome: readyErr, and the scheduler's counters when it became ready.
func (inst *instance) awaitReady(ctx context.Context, timeout time.Duration, giveUp func() error) error {
	if giveUp == nil && inst.r.contained() {
		// A runtime that listens elsewhere in its container is never
		// reachable: do not wait the start timeout out for it.
		giveUp = inst.giveUpWhenElsewhere()
	}
	err := inst.waitReady(ctx, timeout, giveUp)
	inst.readyErr = err
	if err == nil {
		inst.readySched = readSched(inst.proc.PID())
	}
	return err
}

// notReady records why the instance did not become ready, when a wait
// other than awaitReady found it.
func (inst *instance) notReady(err error) { inst.readyErr = err }

// useSchema makes the instance's calls use schema (found by server
// reflection).
func (inst *instance) useSchema(schema *client.Schema) { inst.cli = client.New(inst.conn, schema) }

// begin records that check id runs on the instance from now on; finish
// that it is over.
func (inst *instance) begin(id string) {
	inst.mu.Lock()
	inst.current = id
	inst.mu.Unlock()
	inst.checked(id)
}

func (inst *instance) finish() {
	inst.mu.Lock()
	inst.current = ""
	inst.mu.Unlock()
}

// ask records why conform stops the instance (the first reason stays).
func (inst *instance) ask(why string) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.asked == "" {
		inst.asked, inst.askedAt = why, time.Now()
	}
}

// endedUnasked records that the instance had ended before conform asked
// it to (the signal came too late to count): it ended by itself.
func (inst *instance) endedUnasked() {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.asked, inst.askedAt = "", time.Time{}
	if inst.end != nil {
		inst.end.byItself, inst.end.asked = true, ""
	}
}

// waitReady waits for the connection to open, as the function manager
// does: no probe call, so that a call cannot crash it before any check ran
// (runtimeproc.WaitReady: bench waits the same way).
//
// giveUp, when set, is asked every 100 ms whether to stop waiting: a
// non-nil error ends the wait with it.
func (inst *instance) waitReady(ctx context.Context, timeout time.Duration, giveUp func() error) error {
	in, err := runtimeproc.WaitReady(ctx, inst.conn, runtimeproc.Wait{Addr: inst.addr, Proc: inst.proc, Timeout: timeout,
		ExitWords: func(launch.Exit) string { return inst.exitWords() }, GiveUp: giveUp})
	if err == nil {
		inst.readyIn = in
	}
	return err
}

// call calls the instance's Call method, records it and classifies a
// failure.
//
// The call is sent with the function manager's deadline and given up on
// when the runtime had timeout of its own time (patience.go).
func (inst *instance) call(ctx context.Context, owner string, m *client.Message, timeout time.Duration, opts ...grpc.CallOption) (*client.Message, *callErr) {
	return inst.callDeadline(ctx, owner, m, timeout, false, opts...)
}

// callExact calls with exactly timeout as the deadline sent and kept (the
// deadline check).
func (inst *instance) callExact(ctx context.Context, owner string, m *client.Message, timeout time.Duration) (*client.Message, *callErr) {
	return inst.callDeadline(ctx, owner, m, timeout, true)
}

func (inst *instance) callDeadline(ctx context.Context, owner string, m *client.Message, timeout time.Duration, exact bool, opts ...grpc.CallOption) (*client.Message, *callErr) {
	var res *client.Message
	rec, cerr := inst.do(ctx, owner, m.FunctionName, len(m.Payload), timeout, exact, func(cctx context.Context) error {
		var err error
		res, err = inst.cli.Call(cctx, m, opts...)
		return err
	})
	if cerr == nil {
		inst.judge(rec, m, res)
	}
	return res, cerr
}

// callRaw sends raw bytes to method ("" = the schema's Call).
func (inst *instance) callRaw(ctx context.Context, owner, method string, req []byte, timeout time.Duration) ([]byte, *callErr) {
	var res []byte
	name := method
	if name == "" {
		name = "(raw bytes)"
	}
	_, cerr := inst.do(ctx, owner, name, len(req), timeout, false, func(cctx context.Context) error {
		var err error
		res, err = inst.cli.CallRaw(cctx, method, req)
		return err
	})
	return res, cerr
}

func (inst *instance) do(ctx context.Context, owner, function string, reqBytes int, timeout time.Duration, exact bool, f func(context.Context) error) (*callRecord, *callErr) {
	rec := &callRecord{inst: inst.n, owner: owner, function: function, start: time.Now(), reqBytes: reqBytes}
	inst.mu.Lock()
	inst.calls = append(inst.calls, rec)
	rec.seq = len(inst.calls)
	if inst.end != nil || inst.hung != "" {
		defer inst.mu.Unlock()
		rec.end = rec.start
		if inst.hung != "" {
			rec.kind = kindHung
			return rec, &callErr{kind: kindHung, rec: rec, inst: inst}
		}
		rec.kind = kindGone
		return rec, &callErr{kind: kindGone, rec: rec, inst: inst}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	inst.inFlight[rec] = cancel
	inst.mu.Unlock()
	err, gaveUp := inst.patience(cctx, timeout, exact, f)
	// conform's deadline passed: it gave up on the call (patience.go), or
	// an exact deadline passed, by its own timer or a moment sooner on
	// the runtime's side (grpc-go's server resets the stream at the
	// deadline it was sent, and the client reports that as
	// DEADLINE_EXCEEDED before its own timer).
	timedOut := cctx.Err() == nil && (gaveUp ||
		status.Code(err) == codes.DeadlineExceeded && time.Since(rec.start) >= timeout*9/10)
	end := time.Now()
	// Classify while the call still counts as in flight: if the process
	// ended under it, the instance's end lists it.
	ce := inst.classify(ctx, rec, err, context.Cause(cctx), timedOut)
	inst.mu.Lock()
	rec.end = end
	if ce != nil {
		rec.kind = ce.kind
		if ce.status != nil {
			rec.code, rec.message = ce.status.Code(), ce.status.Message()
		}
	}
	delete(inst.inFlight, rec)
	inst.mu.Unlock()
	cancel(nil)
	return rec, ce
}

var tooLarge = regexp.MustCompile(`received message larger than max \((\d+) vs\. (\d+)\)`)

// classify says where a call's failure came from: the runtime's answer, the
// runtime's end, or conform itself.
func (inst *instance) classify(ctx context.Context, rec *callRecord, err error, cause error, timedOut bool) *callErr {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	ce := &callErr{rec: rec, inst: inst, status: st, err: err}
	switch {
	case errors.Is(cause, errStopped):
		ce.kind = kindStopped
		return ce
	case ctx.Err() != nil:
		if inst.r.interrupted() {
			ce.kind = kindInterrupted
		} else {
			ce.kind = kindBudget
		}
		return ce
	}
	if timedOut {
		// conform's own deadline passed, whatever status the client made
		// of it.
		switch {
		case inst.proc.Exited():
			inst.ended(false)
			ce.kind = kindExited
		case inst.proc.Stopped():
			ce.kind = kindStopped
		default:
			ce.kind = kindNoAnswer
		}
		return ce
	}
	if transportError(st) {
		// The connection broke: the process may be ending. Give the
		// reaper a moment to tell.
		select {
		case <-inst.proc.Done():
			inst.ended(false)
			ce.kind = kindExited
			return ce
		case <-time.After(300 * time.Millisecond):
		}
		if inst.proc.Stopped() {
			ce.kind = kindStopped
		} else {
			ce.kind = kindConnLost
		}
		return ce
	}
	switch st.Code() {
	case codes.ResourceExhausted:
		if m := tooLarge.FindStringSubmatch(st.Message()); m != nil && m[2] == strconv.Itoa(inst.r.recvLimit()) {
			ce.kind = kindTooLarge
			ce.replyLen, _ = strconv.Atoi(m[1])
			return ce
		}
		if strings.Contains(st.Message(), "trying to send message larger than max") {
			ce.kind = kindHarness
			return ce
		}
	case codes.Unimplemented:
		if unknownService(st.Message()) && rec.function != "" && !strings.HasPrefix(rec.function, "/") {
			ce.kind = kindNoService
			return ce
		}
	}
	if role := inst.r.roleOf(rec.function); role != "" && (st.Code() == codes.NotFound || st.Code() == codes.Unimplemented) {
		ce.kind = kindMissing
		ce.role = role
		return ce
	}
	ce.kind = kindAnswered
	return ce
}

// transportError tells a status grpc-go's client made up from a broken
// connection from one a server sent: the client's own wordings.
func transportError(st *status.Status) bool {
	if st.Code() != codes.Unavailable && st.Code() != codes.Internal && st.Code() != codes.Canceled {
		return false
	}
	m := st.Message()
	for _, p := range []string{"error reading from server", "connection error", "transport is closing",
		"connection closed", "stream terminated by RST_STREAM", "failed to write", "keepalive ping failed",
		"server closed the stream without sending trailers", "write: broken pipe", "connection reset by peer"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// unknownService recognises the answers of gRPC servers to a method they do
// not serve: grpc-go, grpcio (Python) and grpc-js (Node).
func unknownService(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "unknown service") || strings.Contains(m, "method not found") ||
		strings.Contains(m, "does not implement the method") || strings.Contains(m, "unknown method")
}

// statusString renders a status as NOT_FOUND: message.
func statusString(st *status.Status) string {
	if st == nil {
		return "OK"
	}
	return client.CodeName(st.Code()) + ": " + st.Message()
}

// checked records that a check ran on the instance.
func (inst *instance) checked(id string) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	for _, c := range inst.checks {
		if c == id {
			return
		}
	}
	inst.checks = append(inst.checks, id)
}

// markHung records that the instance stopped answering and ends it.
func (inst *instance) markHung(what string) {
	inst.mu.Lock()
	if inst.hung == "" {
		inst.hung = what
	}
	inst.mu.Unlock()
	inst.kill("it stopped answering (" + what + ")")
}

// lines returns what the instance wrote between from and to, at most 20
// lines and 4 KiB, the last ones kept.
func (inst *instance) lines(from, to time.Time) []OutputLine {
	const maxLines, maxBytes = 20, 4 << 10
	ls := inst.proc.Lines(from, to)
	var out []OutputLine
	n := 0
	for i := len(ls) - 1; i >= 0 && len(out) < maxLines; i-- {
		t := ls[i].Text
		if n+len(t) > maxBytes {
			if n == 0 {
				t = t[:maxBytes]
			} else {
				break
			}
		}
		n += len(t)
		out = append(out, OutputLine{Instance: inst.n, MS: ms(ls[i].At.Sub(inst.r.started)), Stream: ls[i].Stream, Text: t})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// report describes the instance for the report.
func (inst *instance) report() InstanceReport {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	ir := InstanceReport{N: inst.n, Role: inst.role, Pid: inst.proc.PID(), Address: inst.addr,
		StartedMS: ms(inst.proc.StartTime().Sub(inst.r.started)), Checks: append([]string(nil), inst.checks...)}
	if inst.readyErr == nil {
		v := ms(inst.readyIn)
		ir.ReadyMS = &v
	} else {
		ir.NotReady = inst.readyErr.Error()
	}
	for _, c := range inst.calls {
		ir.Calls++
		if c.kind != kindOK {
			ir.Failed = append(ir.Failed, c.report(inst.r.started))
		}
	}
	ir.Resources = inst.r.res.of(inst)
	if e := inst.end; e != nil {
		v := ms(e.at.Sub(inst.r.started))
		ir.EndedMS = &v
		ir.Exit = e.exit
		ir.ByItself = e.byItself
		ir.StoppedBy = e.asked
		if !inst.askedAt.IsZero() {
			v := ms(inst.askedAt.Sub(inst.r.started))
			ir.StopMS = &v
		}
		for _, c := range e.unanswered() {
			ir.InFlight = append(ir.InFlight, c.report(inst.r.started))
		}
	}
	return ir
}

// answered says whether the runtime answered the call, with any status.
// The caller holds the instance's lock.
func (c *callRecord) answered() bool {
	return !c.end.IsZero() && (c.kind == kindOK || c.kind == kindAnswered || c.kind == kindMissing || c.kind == kindNoService)
}

// unanswered lists the calls in flight when the instance ended that it did
// not answer. A call whose answer arrived as the process exited was in
// flight when conform recorded the exit (on a busy machine the goroutine
// that reads the answer may run after the one that reaps the process), but
// nothing was lost. The caller holds the instance's lock.
func (e *instanceEnd) unanswered() []*callRecord {
	var out []*callRecord
	for _, c := range e.inFlight {
		if !c.answered() {
			out = append(out, c)
		}
	}
	return out
}

// lostCalls is unanswered under the instance's lock.
func (inst *instance) lostCalls(e *instanceEnd) []*callRecord {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return e.unanswered()
}

func (c *callRecord) report(t0 time.Time) CallReport {
	cr := CallReport{Owner: c.owner, Function: c.function, StartMS: ms(c.start.Sub(t0))}
	if !c.end.IsZero() {
		cr.EndMS = ms(c.end.Sub(t0))
	}
	if c.kind != kindOK {
		cr.Status = kindName[c.kind]
		if c.code != codes.OK {
			cr.Status += ": " + client.CodeName(c.code) + ": " + c.message
		}
	}
	return cr
}

var kindName = map[callKind]string{
	kindOK: "ok", kindAnswered: "answered", kindExited: "runtime exited", kindGone: "instance already ended",
	kindStopped: "runtime stopped", kindNoAnswer: "no answer", kindConnLost: "connection lost", kindHung: "instance hung", kindTooLarge: "reply too large",
	kindMissing: "missing fixture", kindNoService: "service not served", kindInterrupted: "interrupted",
	kindBudget: "time budget ran out", kindHarness: "harness error",
}

// describeCall names a call for messages: "call.sequence's call to echo",
// "echo.large's 3.9 MiB call to echo".
func (c *callRecord) describeCall() string {
	what := "call"
	if c.reqBytes >= 64<<10 {
		what = size(int64(c.reqBytes)) + " call"
	}
	if c.function == "" {
		return c.owner + "'s " + what
	}
	return fmt.Sprintf("%s's %s to %s", c.owner, what, c.function)
}
