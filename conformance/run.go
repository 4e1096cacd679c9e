package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// maxRestarts bounds how many fresh main instances conform starts after
// the main instance ended.
const maxRestarts = 3

// budgetSlack is what the time budget adds to the start timeout and the
// grace period; stopping and cleaning up fit in what is left of the 15 s
// that docs/conformance.md promises.
const budgetSlack = 12 * time.Second

// containerSlack is what container mode adds to the time budget.
const containerSlack = 30 * time.Second

// runner runs one suite: its steps are methods, its state the instances,
// what it learned about the fixtures, and the results.
type runner struct {
	cfg     *Config
	log     *slog.Logger
	started time.Time
	parent  context.Context // the caller's: done means interrupted
	ctx     context.Context // parent plus the time budget
	cancel  context.CancelFunc
	budget  time.Duration
	baseEnv []string

	limits    *launch.Limits       // enforced on every instance (--limit-memory, --limit-threads), or nil
	launcher  runtimeproc.Launcher // starts the runtime's instances
	limitKind string               // how: "cgroup v1", "cgroup v2"
	limitErr  error                // why limits asked for cannot be enforced
	res       *resourceFigures

	master *master // the working directories and the master API

	schemaMu    sync.Mutex
	schemaSet   *client.Schema // set by server reflection (--service)
	schemaReady chan struct{}  // closed once the schema is settled

	mu          sync.Mutex
	instances   []*instance
	nextN       int             // the number of the last instance started
	given       map[string]bool // the listen addresses given to instances (listenAddress)
	first       *instance       // the first main instance: the start checks judge it
	main        *instance       // the current main instance
	restarts    int
	gaveUp      string // why no fresh main instance will be started
	fixtures    map[string]*fixture
	noService   string // the runtime does not serve the service: what it answered
	noServiceBy string // the check that found it
	scenarios   map[Requirement]*scenarioRun
	results     []Result
	artifacts   string   // directory of payload files for reproduce lines
	reflection  []string // the services server reflection lists

	ref *referenceRun // the reference the timing checks are calibrated with

	oracles    oracleLog     // the rules every answer broke (oracle.go)
	othersDone chan struct{} // closed once every scenario but the long life is done
	lifeOnly   bool          // the long life's checks are all the selection
	// spawned is closed once the shutdown scenario's instance has its
	// number (or will not be started): the long life starts its own after
	// it, so that the instances' numbers do not depend on the scheduler.
	spawned     chan struct{}
	spawnedOnce sync.Once
	// lifeSpawned is closed once the long life's instance has its number
	// (or will not be started): the late scenarios start theirs after it.
	lifeSpawned     chan struct{}
	lifeSpawnedOnce sync.Once
	firstCall       firstCallResult // the call made as soon as the main instance was ready
	held            []heldCheck     // results of checks that own a run-wide rule, recorded at the end
}

// heldCheck is a check's outcome waiting for every call of the run.
type heldCheck struct {
	c        *Check
	o        Outcome
	from, to time.Time
	inst     *instance
}

// fixture is what the run learned about a fixture role.
type fixture struct {
	served   bool   // a call to it was answered OK
	missing  string // a call answered NOT_FOUND/UNIMPLEMENTED: the words
	broken   string // it hangs: what found it
	brokenBy string // the check that found it
}

type scenarioRun struct {
	done chan struct{}
	res  any
}

// Run runs the selected checks against the runtime and returns the report.
// An error means the harness could not run at all (bad configuration, no
// program to start); everything else — a runtime that misbehaves, an
// interrupted run, a harness failure during the run — is in the Report,
// whose Verdict says what it means. When Run returns, no process it started
// is alive. Run ends within StartTimeout + Grace + 15 s whatever the
// runtime does.
func Run(ctx context.Context, cfg *Config) (*Report, error) {
	if err := catalogValid(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := *cfg // the run may fill in the schema; the caller's value stays as it was
	cfg = &c
	cfg.ConfigFile = defaultConfigFile(cfg)
	if cfg.ConfigFile != "" {
		abs, err := filepath.Abs(cfg.ConfigFile)
		if err != nil {
			return nil, &ConfigError{Err: fmt.Errorf("--config: %w", err)}
		}
		cfg.ConfigFile = abs
	}
	_, contained := cfg.Launcher.(runtimeproc.ContainerLauncher)
	if contained {
		cfg.CgroupLimits = true // the engine always enforces them
	} else {
		// In container mode Command[0] names the image: the image says
		// what runs.
		cmd0, err := runtimeproc.Resolve(cfg.Command[0], cfg.Dir)
		if err != nil {
			return nil, &ConfigError{Err: err}
		}
		cfg.Command = append([]string{cmd0}, cfg.Command[1:]...)
	}
	if cfg.Seed == 0 {
		cfg.Seed = newSeed()
	}
	checks := selection(cfg)
	if len(checks) == 0 {
		return nil, &ConfigError{Err: errors.New("the selection (--run, --skip) leaves no check to run (see --list)")}
	}
	start := time.Now()
	n := max(1, cfg.Repeat)
	var reps []*Report
	for i := 1; i <= n; i++ {
		if i > 1 && ctx.Err() != nil {
			break // interrupted: no further run starts
		}
		rep, err := runOnce(ctx, cfg, checks)
		if err != nil {
			if i == 1 {
				return nil, err
			}
			rep = harnessFailure(cfg, checks, fmt.Errorf("could not start the runtime for run %d of %d: %w", i, n, err))
		}
		reps = append(reps, rep)
		if cfg.OnRun != nil && n > 1 {
			cfg.OnRun(summarize(rep, i))
		}
	}
	rep := reps[0]
	if n > 1 {
		rep = aggregate(reps, ctx.Err() != nil)
		rep.Duration = time.Since(start)
		rep.WallMS = ms(rep.Duration)
	}
	rep.OeRtVersion = cfg.oeRtVersion()
	if cfg.Baseline != nil {
		rep.applyBaseline(cfg.Baseline, ctx.Err() != nil)
	}
	return rep, nil
}

// catalogValid validates the catalog once a process: it does not change,
// and its explain pages take milliseconds to check.
var catalogValid = sync.OnceValue(func() error { return Validate(catalog) })

// runOnce runs the suite once, with fresh instances: it shares nothing
// with another run but the configuration.
func runOnce(ctx context.Context, cfg *Config, checks []*Check) (*Report, error) {
	c := *cfg // the run may fill in the schema; the caller's value stays as it was
	m, err := newMaster(&c)
	if err != nil {
		return nil, err
	}
	r := newRunner(ctx, &c)
	r.master = m
	m.owner = r.instanceOf
	m.contained = r.contained()
	defer r.cleanup()
	return r.run(checks)
}

// harnessFailure is the report of a run conform could not start: every
// check is a harness error.
func harnessFailure(cfg *Config, checks []*Check, err error) *Report {
	rep := &Report{Started: time.Now(), Strict: cfg.Strict, Seed: cfg.Seed, Runtime: Runtime{Command: cfg.Command, Profile: cfg.Profile}}
	for _, c := range checks {
		o := harnessError("%v", err)
		rep.Checks = append(rep.Checks, Result{ID: c.ID, Level: c.Level, Description: c.Describe(cfg), Status: o.Status, Message: o.Message})
	}
	rep.Finish(false)
	return rep
}

func newRunner(parent context.Context, cfg *Config) *runner {
	r := &runner{
		cfg: cfg, log: discard(cfg.Logger), started: time.Now(), parent: parent,
		baseEnv: os.Environ(), fixtures: map[string]*fixture{}, scenarios: map[Requirement]*scenarioRun{}, given: map[string]bool{},
		schemaReady: make(chan struct{}), spawned: make(chan struct{}), lifeSpawned: make(chan struct{}), othersDone: make(chan struct{}), artifacts: cfg.ArtifactDir,
	}
	for _, role := range Roles {
		r.fixtures[role] = &fixture{}
	}
	r.launcher = cfg.Launcher
	if r.launcher == nil {
		r.launcher = runtimeproc.Native{}
	}
	r.budget = cfg.StartTimeout + cfg.Grace + budgetSlack + cfg.Soak
	if _, ok := r.launcher.(runtimeproc.ContainerLauncher); ok {
		// Each instance is a container the engine creates, starts,
		// stops and removes: seconds each on a busy machine.
		r.budget += containerSlack
	}
	r.ctx, r.cancel = context.WithDeadline(parent, r.started.Add(r.budget))
	return r
}

// run is the suite's steps, in order.
func (r *runner) run(checks []*Check) (*Report, error) {
	switch {
	case r.contained():
		// The engine enforces them, always, in the container's cgroup.
		r.limits = &launch.Limits{Memory: r.cfg.MemoryLimit, Tasks: r.cfg.ThreadLimit}
		r.limitKind = "container (cgroup v1)"
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			r.limitKind = "container (cgroup v2)"
		}
	case r.cfg.CgroupLimits:
		r.openLimits()
	}
	main, err := r.startProcess(instanceOpts{role: "main"}) // ready below, beside the scenarios
	if err != nil {
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	r.first, r.main = main, main
	r.startReference(checks)
	r.lifeOnly = true
	for _, c := range checks {
		r.lifeOnly = r.lifeOnly && requires([]*Check{c}, lifeScenario)
	}
	if !requires(checks, shutdownScenario) {
		r.shutdownSpawned()
	}
	if !requires(checks, lifeScenario) {
		r.lifeStarted()
	}
	r.startScenarios(checks)
	if main.awaitReady(r.ctx, r.cfg.StartTimeout, nil) == nil {
		r.log.Debug("main instance ready", "after", main.readyIn)
		if err := r.discover(main); err != nil {
			// Cancel first: a scenario waiting for the schema must start
			// no instance now, or it could outlive Run's return.
			r.cancel()
			close(r.schemaReady)
			return nil, err
		}
	}
	close(r.schemaReady)
	if main.readyErr == nil {
		r.makeFirstCall(main)
	}

	for _, p := range []phase{phaseStart, phaseCalls, phaseLarge, phaseTiming} {
		r.runPhase(checks, p)
	}
	// The late scenarios run once the main instance's checks are done:
	// beside them they saved no wall time on a quiet 2-core machine (the
	// run is CPU-bound there) and cost conform 15-20 MiB more memory
	// (docs/performance.md, "conform's own speed").
	r.startLateScenarios(checks)
	r.waitScenarios()
	r.settleResources()
	r.runPhase(checks, phaseShutdown)
	r.recordHeld()
	r.runPhase(checks, phaseEnd)
	if main.readyErr != nil && !r.ran(startListen.ID) {
		// A runtime that did not start fails the run, whatever the
		// selection: start.listen says so.
		r.runCheck(startListen)
	}
	r.stopMain()
	return r.report(), nil
}

// runPhase runs the selected checks of a phase one after the other.
func (r *runner) runPhase(checks []*Check, p phase) {
	t0 := time.Now()
	for _, c := range checks {
		if c.phase == p {
			r.runCheck(c)
		}
	}
	r.log.Debug("phase done", "phase", int(p), "took", time.Since(t0))
}

func (r *runner) ran(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range r.results {
		if res.ID == id {
			return true
		}
	}
	return false
}

// runCheck runs one check and records its result. A check that could not
// run because its instance ended for a reason that is not its own runs
// once more on a fresh instance.
func (r *runner) runCheck(c *Check) {
	start := time.Now()
	o, inst := r.attempt(c)
	if o.retry {
		r.log.Debug("check runs again on a fresh instance", "check", c.ID, "why", o.Message)
		o, inst = r.attempt(c)
		if o.retry {
			o.retry = false
		}
	}
	if ownsRunWideRule(c) {
		// Judged again once every call of the run was made. Its output
		// window ends now: what the runtime wrote before it is taken
		// from the pipes first.
		if inst != nil {
			inst.proc.Flush(time.Second)
		}
		r.held = append(r.held, heldCheck{c, o, start, time.Now(), inst})
		return
	}
	r.record(c, o, start, time.Now(), inst)
}

// recordHeld records the held checks, now that every call of the run
// was made and judged.
func (r *runner) recordHeld() {
	for _, h := range r.held {
		r.recordAs(h.c, h.o, h.from, h.to, h.inst, true)
	}
	r.held = nil
}

// attempt checks what the check needs, finds its instance and runs it.
func (r *runner) attempt(c *Check) (Outcome, *instance) {
	if o := r.precondition(c); o != nil {
		return *o, nil
	}
	var inst *instance
	switch c.phase {
	case phaseStart:
		inst = r.first
	case phaseEnd:
		// These judge the whole run; they make no calls.
		r.mu.Lock()
		inst = r.main
		r.mu.Unlock()
		return c.run(&checkCtx{ctx: r.ctx, r: r, check: c, inst: inst}), nil
	case phaseShutdown:
		o := c.run(&checkCtx{ctx: r.ctx, r: r, check: c})
		if res := scenarioResult(r, shutdownScenario); res != nil && res.inst != nil {
			res.inst.checked(c.ID)
			return o, res.inst
		}
		return o, nil
	default:
		var o *Outcome
		if inst, o = r.mainInstance(); o != nil {
			return *o, nil
		}
	}
	inst.proc.Sample()
	inst.begin(c.ID)
	o := c.run(&checkCtx{ctx: r.ctx, r: r, check: c, inst: inst})
	inst.finish()
	inst.proc.Sample()
	if r.interrupted() && o.Status != Pass {
		o = notRun("interrupted")
	}
	return o, inst
}

// precondition says why a check cannot run now, or nil.
func (r *runner) precondition(c *Check) *Outcome {
	if r.interrupted() {
		o := notRun("interrupted")
		return &o
	}
	if r.ctx.Err() != nil && c.phase != phaseEnd && c.phase != phaseShutdown {
		o := notRun("conform's time budget of %s (start timeout + grace + %s) ran out", r.budget, budgetSlack)
		return &o
	}
	if r.first.readyErr != nil && c != startListen {
		o := notRun("the runtime did not start (see start.listen)")
		return &o
	}
	if c.phase == phaseStart || c.phase == phaseEnd || c.phase == phaseShutdown {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noService != "" {
		o := notRun("%s (see %s)", r.noService, r.noServiceBy)
		return &o
	}
	for _, role := range c.Needs {
		f := r.fixtures[role]
		switch {
		case f.missing != "":
			o := notRun("%s", f.missing)
			return &o
		case f.broken != "":
			o := fail("the %s fixture %s (see %s); this check needs it", role, f.broken, f.brokenBy)
			return &o
		}
	}
	return nil
}

// mainInstance returns the main instance, starting a fresh one when it
// ended (at most maxRestarts times).
func (r *runner) mainInstance() (*instance, *Outcome) {
	r.mu.Lock()
	m, gaveUp := r.main, r.gaveUp
	r.mu.Unlock()
	if m.alive() {
		return m, nil
	}
	if gaveUp != "" {
		o := notRun("%s", gaveUp)
		return nil, &o
	}
	if r.restarts >= maxRestarts {
		r.mu.Lock()
		r.gaveUp = fmt.Sprintf("the runtime ended %d times (%s); conform starts a fresh instance at most %d times", r.restarts+1, r.endedList(), maxRestarts)
		gaveUp = r.gaveUp
		r.mu.Unlock()
		o := notRun("%s", gaveUp)
		return nil, &o
	}
	r.restarts++
	inst, err := r.startInstance(fmt.Sprintf("main (restart %d)", r.restarts))
	if err != nil {
		r.mu.Lock()
		r.gaveUp = fmt.Sprintf("conform could not start a fresh instance: %v", err)
		r.mu.Unlock()
		o := harnessError("could not start a fresh instance after instance #%d ended: %v", m.n, err)
		return nil, &o
	}
	if inst.readyErr != nil {
		inst.kill("it did not become ready")
		r.mu.Lock()
		r.gaveUp = fmt.Sprintf("a fresh instance (#%d) did not become ready: %v", inst.n, inst.readyErr)
		gaveUp = r.gaveUp
		r.mu.Unlock()
		o := notRun("%s", gaveUp)
		return nil, &o
	}
	r.mu.Lock()
	r.main = inst
	r.mu.Unlock()
	return inst, nil
}

// endedList names the main instances that ended: "#1 exited (exit status
// 3) during fail.status, #2 …". Called with r.mu held.
func (r *runner) endedList() string {
	var parts []string
	for _, inst := range r.instances {
		if inst.role == "shutdown" || inst.probe {
			continue
		}
		if e := inst.ending(); e != nil {
			parts = append(parts, fmt.Sprintf("#%d %s", inst.n, inst.endWords()))
		} else if inst.hungWords() != "" {
			parts = append(parts, fmt.Sprintf("#%d stopped answering", inst.n))
		}
	}
	return strings.Join(parts, "; ")
}

// record makes the check's result.
func (r *runner) record(c *Check, o Outcome, from, to time.Time, inst *instance) {
	r.recordAs(c, o, from, to, inst, false)
}

// recordAs is record; held says the check's output window was closed (and
// the pipes flushed) at to, when it ran, not now.
func (r *runner) recordAs(c *Check, o Outcome, from, to time.Time, inst *instance, held bool) {
	o = r.oracleOutcome(c, o)
	res := Result{
		ID: c.ID, Level: c.Level, Description: c.Describe(r.cfg), Status: o.Status, Message: o.Message,
		Duration: to.Sub(from), DurationMS: ms(to.Sub(from)), Repro: o.Repro, Figures: o.figures,
	}
	if res.Status == Fail && c.Level != MUST {
		res.Status = Warn
	}
	if res.Status != Fail && res.Status != Warn {
		res.Repro = "" // a line reproduces a failure, nothing else
	}
	if res.Status == Fail || res.Status == Warn {
		res.Hint = c.Hint
	}
	if b := r.cfg.Baseline; b != nil && r.cfg.Repeat <= 1 {
		// For live output; the report marks every result again at the end.
		res.Baseline, res.BaselineNote = b.mark(res)
	}
	if o.output != nil {
		res.Output = o.output
	} else if res.Status != Pass && inst != nil {
		// What the runtime wrote before it answered is in the pipes:
		// take it before reading the check's window, up to now.
		end := to
		if !held {
			inst.proc.Flush(time.Second)
			end = time.Now()
		}
		res.Output = inst.lines(from, end)
	}
	if inst != nil {
		res.Instance = inst.n
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	if r.cfg.OnResult != nil {
		r.cfg.OnResult(res)
	}
}

// interrupted reports whether the caller cancelled the run.
func (r *runner) interrupted() bool { return r.parent.Err() != nil }

// startScenarios starts, each in its own goroutine, the scenarios the
// selected checks require (those that run late: startLateScenarios).
func (r *runner) startScenarios(checks []*Check) { r.startRequired(checks, false) }

// startLateScenarios starts the required scenarios that wait for the main
// instance's checks to be done.
func (r *runner) startLateScenarios(checks []*Check) { r.startRequired(checks, true) }

func (r *runner) startRequired(checks []*Check, late bool) {
	for _, c := range checks {
		for _, s := range c.Requires {
			if _, ok := r.scenarios[s]; ok || s.isLate() != late {
				continue
			}
			sr := &scenarioRun{done: make(chan struct{})}
			r.scenarios[s] = sr
			var before chan struct{}
			if prev, ok := r.scenarios[s.waitsFor()]; ok && s.waitsFor() != nil {
				before = prev.done
			}
			go func() {
				defer close(sr.done)
				if late {
					// The early scenarios' instances are #2 and #3,
					// whatever the scheduler does.
					<-r.spawned
					<-r.lifeSpawned
				}
				if before != nil {
					<-before
				}
				t0 := time.Now()
				sr.res = s.start(r)
				r.log.Debug("scenario done", "scenario", s.scenarioName(), "took", time.Since(t0))
			}()
		}
	}
}

// shutdownSpawned records that the shutdown scenario's instance was
// started, or will not be.
func (r *runner) shutdownSpawned() { r.spawnedOnce.Do(func() { close(r.spawned) }) }

// lifeStarted records that the long life's instance was started, or will
// not be.
func (r *runner) lifeStarted() { r.lifeSpawnedOnce.Do(func() { close(r.lifeSpawned) }) }

// requires reports whether any of the checks requires the scenario.
func requires(checks []*Check, s Requirement) bool {
	for _, c := range checks {
		for _, q := range c.Requires {
			if q == s {
				return true
			}
		}
	}
	return false
}

// waitScenarios waits for the scenarios to end: the long life last, told
// when the others are done.
func (r *runner) waitScenarios() {
	for s, sr := range r.scenarios {
		if s != Requirement(lifeScenario) {
			<-sr.done
		}
	}
	close(r.othersDone)
	for _, sr := range r.scenarios {
		<-sr.done
	}
}

// resultOf returns a scenario's result; the scenario has finished.
func (r *runner) resultOf(s Requirement) any {
	sr, ok := r.scenarios[s]
	if !ok {
		return nil
	}
	<-sr.done
	return sr.res
}

// stopMain stops the current main instance without waiting out calls the
// suite abandoned: SIGTERM, then SIGKILL after at most a second. Its
// graceful exit is not judged here (the shutdown checks judge a fresh
// instance of their own).
func (r *runner) stopMain() {
	r.mu.Lock()
	m := r.main
	r.mu.Unlock()
	if m == nil || m.ending() != nil {
		return
	}
	grace := min(time.Second, r.cfg.Grace)
	if r.interrupted() {
		grace = 200 * time.Millisecond
	}
	m.stop("the suite was over", grace)
}

// cleanup ends every instance and everything they started.
func (r *runner) cleanup() {
	r.cancel()
	r.mu.Lock()
	all := append([]*instance(nil), r.instances...)
	r.mu.Unlock()
	if r.ref != nil && r.ref.inst != nil {
		all = append(all, r.ref.inst)
	}
	var wg sync.WaitGroup
	for _, inst := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if inst.conn != nil {
				inst.conn.Close()
			}
			inst.ask("the run ended")
			inst.proc.Kill()
		}()
	}
	wg.Wait()
	r.master.close()
}

// schema is the wire schema: the configured one, or what server reflection
// gave for --service.
func (r *runner) schema() *client.Schema {
	r.schemaMu.Lock()
	defer r.schemaMu.Unlock()
	if r.schemaSet != nil {
		return r.schemaSet
	}
	return r.cfg.schema()
}

// recvLimit is the largest reply conform accepts: the runtime's message
// limit plus a margin. A bigger reply is the runtime's, reported as such,
// and never held whole in memory.
func (r *runner) recvLimit() int { return r.cfg.maxMessageSize() + 1<<20 + 7 }

// roleOf returns the fixture role served under function name fn, or "".
func (r *runner) roleOf(fn string) string {
	for _, role := range Roles {
		if r.cfg.fn(role) == fn {
			return role
		}
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}
