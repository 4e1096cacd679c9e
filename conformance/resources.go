package conformance

import (
	"fmt"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// The resource checks judge memory and threads in one of two modes, and
// the report says which ran:
//
//   - measured (no limit in force): peaks sampled from /proc — when each
//     instance starts, on a timer, before and after every check and every
//     call of the function manager's load, and when conform stops it —
//     summed over the process tree. Memory is judged by what a limit could
//     not take back: RssAnon + RssShmem. File-backed pages (the program's
//     own code, mapped files: RssFile) count in RSS but a memory cgroup
//     reclaims them at the limit and reads them again.
//   - enforced (--limit-memory/--limit-threads where the machine can):
//     every instance runs in cgroups of its own with the limits (cgroup.go),
//     and the kernel's own counters decide: the peak it charged, how often
//     it reclaimed at the limit, OOM kills, forks and thread creations
//     refused at pids.max.
//
// Under enforced limits the memory verdict comes from the function
// manager's load: a fresh instance driven as the function manager drives
// one, one call at a time, payloads up to the message limit. The rest of
// the suite (its concurrent calls included) is reported beside it, as a
// note. The figures are settled once, when the checks on the main
// instance and the scenarios are done; the checks and the summary read the
// same ones.

// loadScenario drives a fresh instance the way the function manager does:
// one call at a time, each fixture, payloads up to the message limit, a
// few rounds. It runs late: beside the main instance's call checks, over
// before its 4 MiB and timing checks, so that its load disturbs no timing
// check.
// What it measures is its own instance's, which no other call reaches.
var loadScenario = &Scenario[*loadResult]{Name: "the function manager's load", run: runLoadScenario, late: true}

const (
	loadOwner  = "the function manager's load"
	loadRounds = 3
	// minSamples: a measured peak from fewer samples says so.
	minSamples = 10
)

// loadResult is what the function manager's load did.
type loadResult struct {
	harnessErr  error
	notStarted  bool // the runtime did not start at all (see start.listen)
	inst        *instance
	notReady    error
	interrupted bool
	calls       int   // calls made
	answered    int   // calls answered (any status)
	largest     int64 // the largest payload sent and answered
	stoppedBy   string
	from, to    time.Time
}

func runLoadScenario(r *runner) *loadResult {
	res := &loadResult{from: time.Now()}
	defer func() { res.to = time.Now() }()
	switch {
	case r.ctx.Err() != nil:
		res.interrupted = true
		return res
	case r.first.readyErr != nil:
		res.notStarted = true
		return res
	}
	inst, err, notReady := r.scenarioInstance("load")
	res.inst, res.harnessErr, res.notReady = inst, err, notReady
	if err != nil || notReady != nil {
		return res
	}
	defer inst.proc.Cleanup()
	for _, m := range loadMessages(r) {
		if r.ctx.Err() != nil {
			res.interrupted = r.interrupted()
			break
		}
		if role := r.roleOf(m.FunctionName); role != "" && r.unusableFixture(role) {
			continue
		}
		inst.proc.Sample()
		_, cerr := inst.call(r.ctx, loadOwner, m, loadTimeout(len(m.Payload)))
		inst.proc.Sample()
		r.learn(loadOwner, m.FunctionName, cerr)
		res.calls++
		if cerr == nil || cerr.kind == kindAnswered || cerr.kind == kindMissing {
			res.answered++
			if cerr == nil {
				res.largest = max(res.largest, int64(len(m.Payload)))
			}
			continue
		}
		if cerr.kind == kindNoAnswer {
			inst.markHung(fmt.Sprintf("no answer within %s to %s", cerr.rec.end.Sub(cerr.rec.start).Round(time.Millisecond), cerr.rec.describeCall()))
		}
		if !inst.alive() {
			break
		}
	}
	if inst.alive() {
		res.stoppedBy = "the function manager's load was over"
		inst.stop(res.stoppedBy, min(time.Second, r.cfg.Grace))
	}
	return res
}

// loadTimeout bounds a call of the load: an ordinary call's time, and 2 s
// more a MiB.
func loadTimeout(n int) time.Duration {
	return callTimeout + time.Duration(n>>20)*2*time.Second
}

// unusableFixture reports whether a role's fixture is missing or hung.
func (r *runner) unusableFixture(role string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.fixtures[role]
	return f.missing != "" || f.broken != ""
}

// loadMessages are the calls of the load: each fixture, echoes from 1 KiB
// to just under the message limit, a few rounds.
func loadMessages(r *runner) []*client.Message {
	limit := r.cfg.maxMessageSize()
	var echoes [][]byte
	for _, n := range []int{1 << 10, 64 << 10, 1 << 20, limit - 64<<10} {
		if n > 0 && n <= limit-64<<10 {
			echoes = append(echoes, randomBytes(n))
		}
	}
	var out []*client.Message
	for round := 0; round < loadRounds; round++ {
		for _, p := range echoes {
			out = append(out, &client.Message{FunctionName: r.cfg.fn("echo"), Payload: p})
		}
		out = append(out,
			&client.Message{ID: uint64(round + 1), QOS: 1, Topic: "oe-rt/conform/load", FunctionName: r.cfg.fn("context"), Payload: []byte(`{}`), FunctionInvokeID: "oe-rt-load-" + randomHex(4)},
			&client.Message{FunctionName: r.cfg.fn("none"), Payload: []byte(`{}`)},
			&client.Message{FunctionName: r.cfg.fn("fail"), Payload: []byte(`{"fail":true}`)},
			&client.Message{FunctionName: r.cfg.fn("sleep"), Payload: []byte(fmt.Sprintf(`{"ms":%d}`, loadSleep(round).Milliseconds()))},
		)
	}
	return out
}

// loadSleep is what the load's sleep of a round asks: 100 ms in the first
// round, so that a sleep answered OK before its time is told from the
// call's own round trip even on a busy machine; 10 ms after.
func loadSleep(round int) time.Duration {
	if round == 0 {
		return 100 * time.Millisecond
	}
	return 10 * time.Millisecond
}

// unusable says why the load's result cannot be judged, or nil.
func (l *loadResult) unusable() *Outcome {
	o := startUnusable("the function manager's load", l.inst, l.interrupted, l.notStarted, l.harnessErr, l.notReady)
	if o != nil && o.Status == Fail {
		o.output = l.output()
	}
	return o
}

// startUnusable says why a scenario's result cannot be judged when its
// fresh instance (for what: "the long life") could not start or become
// ready, or nil: interrupted, the runtime never started, the harness
// failed, the run's budget ran out while it started (not the runtime's
// doing), or it did not become ready (the runtime's).
func startUnusable(what string, inst *instance, interrupted, notStarted bool, harnessErr, notReady error) *Outcome {
	var o Outcome
	switch {
	case interrupted:
		o = notRun("interrupted")
	case notStarted:
		o = notRun("the runtime did not start (see start.listen)")
	case harnessErr != nil:
		o = harnessError("could not start a fresh instance for %s: %v", what, harnessErr)
	case budgetSpent(notReady):
		o = notRun("conform's time budget ran out while instance #%d for %s started", inst.n, what)
	case notReady != nil:
		o = fail("a fresh instance (#%d) for %s did not become ready: %v", inst.n, what, notReady)
	default:
		return nil
	}
	return &o
}

// idle says that the load moved no memory, and why, or "".
func (l *loadResult) idle() string {
	if l.largest > 0 {
		return ""
	}
	if l.calls == 0 {
		return "measured idle: the function manager's load made no call (no fixture to call)"
	}
	return fmt.Sprintf("measured nearly idle: no echo of the function manager's load was answered OK (%d of %d calls answered)", l.answered, l.calls)
}

func (l *loadResult) output() []OutputLine {
	if l.inst == nil {
		return nil
	}
	return l.inst.lines(l.from, l.to)
}

func (c *checkCtx) load() *loadResult { return resultOf(c, loadScenario) }

var resourcesMemory = &Check{ID: "resources.memory", Level: SHOULD, phase: phaseEnd, Requires: []Requirement{loadScenario},
	Description: "the runtime holds in {memory}: under enforced limits it answers the function manager's load (one call at a time, payloads up to {maxmsg}) without being killed; measured, its unreclaimable memory (RssAnon + RssShmem of the process tree) stays within it",
	Hint: "Node: Node alone takes about 40 MiB; --max-old-space-size and --max-semi-space-size bound the heap, and a gc around megabyte calls gives buffers back (the template runs --expose-gc).\n" +
		"Python grpcio: import less at start (modules stay resident).\n" +
		"grpc-go: GOMEMLIMIT; per-call buffers of the message limit multiply by the concurrent calls.",
	run: checkMemory}

func checkMemory(c *checkCtx) Outcome {
	l := c.load()
	if o := l.unusable(); o != nil {
		return *o
	}
	ls := c.limits()
	if ls.enforced {
		return c.memoryEnforced(l)
	}
	f := ls.figures
	if f.rep.Samples == 0 {
		return notRun("no /proc to measure memory")
	}
	ir := f.per[f.memInst]
	lim := c.cfg().MemoryLimit
	within := "within"
	if ir.PeakUnreclaimable > lim {
		within = "over"
	}
	msg := fmt.Sprintf("measured, not enforced: peak unreclaimable memory %s (RssAnon + RssShmem, instance #%d) %s %s; RSS %s = anon %s + file %s + shmem %s",
		mib(ir.PeakUnreclaimable), f.memInst.n, within, limitSize(lim), mib(ir.RSS.Anon+ir.RSS.File+ir.RSS.Shmem), mibs(ir.RSS.Anon), mibs(ir.RSS.File), mib(ir.RSS.Shmem))
	msg += f.samplesNote() + loadNote(l)
	if ir.PeakUnreclaimable > lim {
		return fail("%s", msg)
	}
	return pass("%s", msg)
}

// loadNote says how the load drove the runtime, or that it did not.
func loadNote(l *loadResult) string {
	if l.inst == nil {
		return ""
	}
	if idle := l.idle(); idle != "" {
		return "; " + idle
	}
	return fmt.Sprintf("; driven by the function manager's load (#%d: %d calls one at a time, up to %s)", l.inst.n, l.calls, size(l.largest))
}

// mibs is a figure in MiB without the unit.
func mibs(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

func (c *checkCtx) memoryEnforced(l *loadResult) Outcome {
	st, _ := c.limits().figures.cgroup(l.inst)
	if idle := l.idle(); idle != "" && l.inst.ending() == nil {
		o := notRun("the function manager's load could not drive the runtime: %s", idle)
		o.output = l.output()
		return o
	}
	if h := l.inst.hungWords(); h != "" {
		o := notRun("the function manager's load could not finish: instance #%d stopped answering (%s)", l.inst.n, h)
		o.output = l.output()
		return o
	}
	if e := l.inst.ending(); e != nil && e.byItself {
		what := "under " + memoryLimitWords(st) + " the runtime "
		if e.oom {
			what = "the runtime "
		}
		o := fail("enforced: %s%s", what, l.inst.endWords())
		o.output = l.output()
		return o
	}
	reclaim := "limit never reached"
	if st.LimitHits > 0 {
		reclaim = fmt.Sprintf("the kernel reclaimed at the limit %d times", st.LimitHits)
	}
	peak := "cgroup peak unknown (no memory.peak before Linux 5.19)"
	if st.MemoryPeak >= 0 {
		peak = "cgroup peak " + mib(st.MemoryPeak)
	}
	return pass("enforced (%s): the function manager's load, %d calls one at a time up to %s, ran without a kill on #%d: %s, %s, no OOM kill%s",
		memoryLimitWords(st), l.calls, size(l.largest), l.inst.n, peak, reclaim, c.limits().suiteNote(l.inst))
}

// suiteNote says whether the rest of the suite — the other instances,
// whose load includes the suite's concurrent calls — also fit in the
// limits: a SHOULD-level note beside the memory verdict, which the
// function manager's load decides.
func (r *runner) suiteNote(load *instance) string {
	var fit, misfit []string
	for _, inst := range r.allInstances() {
		ir := r.res.per[inst]
		if inst == load || ir == nil || ir.Cgroup == nil {
			continue
		}
		name := fmt.Sprintf("#%d %s", inst.n, inst.role)
		switch e := inst.ending(); {
		case e != nil && e.oom:
			misfit = append(misfit, name+" "+inst.endWords())
		case ir.Cgroup.OOMKills > 0:
			misfit = append(misfit, fmt.Sprintf("%s: the OOM killer killed %d of its processes", name, ir.Cgroup.OOMKills))
		case ir.Cgroup.Peak != nil:
			fit = append(fit, fmt.Sprintf("%s %s", name, mib(*ir.Cgroup.Peak)))
		default:
			fit = append(fit, name)
		}
	}
	switch {
	case len(misfit) > 0:
		return "; the rest of the suite did not all fit (a note, not this verdict: the function manager sends an instance one call at a time): " + strings.Join(misfit, "; ")
	case len(fit) > 0:
		return "; the rest of the suite fit too (" + strings.Join(fit, ", ") + ")"
	}
	return ""
}

var resourcesThreads = &Check{ID: "resources.threads", Level: SHOULD, phase: phaseEnd, Requires: []Requirement{loadScenario},
	Description: "the runtime's process tree has at most {threads} threads and processes at once (enforced: pids.max refuses none)",
	Hint:        "Bound the thread pools: Python grpcio ThreadPoolExecutor(max_workers=N) (None means CPUs + 4); Node UV_THREADPOOL_SIZE and --v8-pool-size; grpc-go GOMAXPROCS (blocking system calls and cgo add threads).",
	run:         checkThreads}

func checkThreads(c *checkCtx) Outcome {
	if l := c.load(); l.interrupted || l.notStarted {
		return *l.unusable()
	}
	ls := c.limits()
	f := ls.figures
	lim := c.cfg().ThreadLimit
	if ls.enforced {
		var refused, zombies []string
		for _, inst := range c.instances() {
			z := 0
			if ir := f.of(inst); ir != nil {
				z = ir.ZombiesAtPeak
			}
			if st, ok := f.cgroup(inst); ok && st.TasksRefused > 0 {
				w := fmt.Sprintf("instance #%d (%s): %s", inst.n, inst.role, refusedWords(st))
				if l := inst.threadComplaint(); l != "" {
					w += fmt.Sprintf(" (stderr: %q)", l)
				}
				if z > 0 {
					w += fmt.Sprintf("; %d of its tasks at its peak %s", z, plural(z, "was a zombie", "were zombies"))
				}
				refused = append(refused, w)
			} else if z > 0 && c.contained() {
				zombies = append(zombies, fmt.Sprintf("instance #%d (%s): %d %s at its peak", inst.n, inst.role, z, plural(z, "zombie", "zombies")))
			}
		}
		if len(refused) > 0 || len(zombies) > 0 {
			o := fail("enforced: %s", strings.Join(append(refused, zombies...), "; "))
			if c.contained() && (len(zombies) > 0 || strings.Contains(o.Message, "zombie")) {
				o.Message += fmt.Sprintf(". A zombie is a child process that ended and was never waited for: it holds a PID, and pids.max %d counts it. "+
					"As PID 1 of its container the runtime is the parent of every orphan in it, and no init reaps them: wait() for every child (reap SIGCHLD), or run under an init", lim)
			}
			return o
		}
		if f.rep.TasksPeak > 0 {
			return pass("enforced: at most %d tasks (pids.peak of instance #%d) under pids.max %d; none refused", f.rep.TasksPeak, f.rep.TasksInstance, lim)
		}
	}
	if f.rep.Samples == 0 {
		return notRun("no /proc to count threads")
	}
	mode := "measured"
	if ls.enforced {
		mode = "enforced, none refused; measured"
	}
	msg := fmt.Sprintf("%s: peak %d threads (instance #%d's process tree) against %d%s", mode, f.rep.Threads, f.rep.ThreadsInstance, lim, f.samplesNote())
	if z := f.rep.ThreadsZombies; z > 0 {
		msg += fmt.Sprintf("; %d of them %s: child processes that ended and were never waited for, each holding a PID (pids.max counts them) — wait() for every child, not a bigger thread pool", z, plural(z, "is a zombie", "are zombies"))
	}
	if f.rep.Threads > lim {
		return fail("%s: over the limit", msg)
	}
	return pass("%s", msg)
}

// resourcesLimits is opt-in: it runs with --limit-memory/--limit-threads,
// and says whether the runtime ran the whole suite within the limits
// enforced; the other checks then judge by the kernel's counters.
var resourcesLimits = &Check{ID: "resources.limits", Level: SHOULD, phase: phaseEnd, OptIn: true, Requires: []Requirement{loadScenario},
	Enabled:     func(cfg *Config) bool { return cfg.CgroupLimits },
	Description: "with the limits ({memory}, {threads} threads) enforced on every instance by a cgroup of its own, no instance is OOM-killed or refused a thread (only with --limit-memory/--limit-threads)",
	Hint:        "Under the memory and pids limits the runtime was killed or could not start a thread: see resources.memory and resources.threads for each stack's knobs.",
	run:         checkLimits}

func checkLimits(c *checkCtx) Outcome {
	ls := c.limits()
	switch {
	case ls.notEnforced != "":
		return notRun("%s", ls.notEnforced)
	case !ls.enforced:
		return notRun("no limits asked for: pass --limit-memory and --limit-threads (%s)", limitsDoc)
	}
	var problems, peaks []string
	n := 0
	var st launch.CgroupStats
	for _, inst := range c.instances() {
		var ok bool
		if st, ok = ls.figures.cgroup(inst); !ok {
			continue
		}
		n++
		name := fmt.Sprintf("instance #%d (%s)", inst.n, inst.role)
		if e := inst.ending(); e != nil && e.oom {
			problems = append(problems, name+" "+inst.endWords())
		} else if st.OOMKills > 0 {
			problems = append(problems, fmt.Sprintf("%s: the kernel's OOM killer killed %d of its processes under %s", name, st.OOMKills, memoryLimitWords(st)))
		}
		if st.TasksRefused > 0 {
			w := name + ": " + refusedWords(st)
			if l := inst.threadComplaint(); l != "" {
				w += fmt.Sprintf(" (stderr: %q)", l)
			}
			problems = append(problems, w)
		}
		if st.MemoryPeak >= 0 {
			peaks = append(peaks, fmt.Sprintf("#%d %s %s", inst.n, inst.role, mib(st.MemoryPeak)))
		}
	}
	if len(problems) > 0 {
		return fail("%s", strings.Join(problems, "; "))
	}
	msg := fmt.Sprintf("each of the %d instances ran in a %s of its own (%s, pids.max %d) with no OOM kill and no thread refused",
		n, ls.kind, memoryLimitWords(st), st.Limits.Tasks)
	if len(peaks) > 0 {
		msg += "; cgroup peaks " + strings.Join(peaks, ", ")
	}
	return pass("%s", msg)
}

// Resources says how a run judged memory and threads, and the figures the
// resource checks read (the summary shows the same).
type Resources struct {
	// Mode is "measured" (sampled from /proc, no limit in force) or
	// "enforced" (each instance in a cgroup of its own with the limits).
	Mode string `json:"mode"`
	// Cgroup says how the limits were enforced: "cgroup v1", "cgroup v2".
	Cgroup string `json:"cgroup,omitempty"`
	// MemoryFile names the file of the memory limit ("memory.max",
	// "memory.limit_in_bytes").
	MemoryFile string `json:"memory_file,omitempty"`
	// NotEnforced says why the limits asked for could not be enforced, and
	// what would make it possible.
	NotEnforced string `json:"not_enforced,omitempty"`
	MemoryLimit int64  `json:"memory_limit_bytes"`
	ThreadLimit int    `json:"thread_limit"`
	// Load is what the function manager's load did, when it ran.
	Load *LoadFigures `json:"load,omitempty"`
	// Memory is the figure resources.memory judged: enforced, the cgroup
	// peak of the load's instance (or the highest, without the load);
	// measured, the highest peak of RssAnon + RssShmem. MemoryInstance is
	// its instance.
	Memory         int64 `json:"memory_bytes"`
	MemoryInstance int   `json:"memory_instance,omitempty"`
	// Threads is the highest peak thread count sampled; TasksPeak the
	// highest pids.peak (enforced, where the kernel keeps one).
	Threads         int `json:"threads"`
	ThreadsInstance int `json:"threads_instance,omitempty"`
	// ThreadsZombies is how many of Threads were zombies: child processes
	// that ended and were never waited for.
	ThreadsZombies int   `json:"threads_zombies,omitempty"`
	TasksPeak      int64 `json:"tasks_peak,omitempty"`
	TasksInstance  int   `json:"tasks_instance,omitempty"`
	// Samples is how many samples the measured figures come from (those
	// of their instance); FewSamples is set when they are too few to
	// trust.
	Samples    int  `json:"samples"`
	FewSamples bool `json:"few_samples,omitempty"`
}

// LoadFigures is what the function manager's load did.
type LoadFigures struct {
	Instance     int   `json:"instance"`
	Calls        int   `json:"calls"`
	Answered     int   `json:"answered"`
	LargestBytes int64 `json:"largest_payload_bytes"`
}

// InstanceResources is what one instance used.
type InstanceResources struct {
	// PeakRSS is the highest RSS of its process tree (each process's own
	// high-water mark); RSS splits the highest total a sample saw.
	PeakRSS int64    `json:"peak_rss_bytes"`
	RSS     RSSSplit `json:"rss_at_peak"`
	// PeakUnreclaimable is the highest RssAnon + RssShmem.
	PeakUnreclaimable int64 `json:"peak_unreclaimable_bytes"`
	PeakThreads       int   `json:"peak_threads"`
	// ZombiesAtPeak is how many of the peak's threads were zombies.
	ZombiesAtPeak int `json:"zombies_at_peak_threads,omitempty"`
	// Samples were taken over SampledMS, from the first to the last.
	Samples   int     `json:"samples"`
	SampledMS float64 `json:"sampled_ms"`
	// Cgroup holds the kernel's counters under enforced limits.
	Cgroup *CgroupFigures `json:"cgroup,omitempty"`
}

// RSSSplit is a resident set by kind.
type RSSSplit struct {
	Anon  int64 `json:"anon_bytes"`
	File  int64 `json:"file_bytes"`
	Shmem int64 `json:"shmem_bytes"`
}

// CgroupFigures are the kernel's counters of an instance's limit cgroups.
type CgroupFigures struct {
	// Peak is the most memory charged at once (absent when the kernel does
	// not say).
	Peak *int64 `json:"memory_peak_bytes,omitempty"`
	// LimitHits counts how often the charge reached the limit (v1
	// memory.failcnt, v2 memory.events max): page cache reclaimed.
	LimitHits    int64  `json:"limit_hits"`
	OOMKills     int64  `json:"oom_kills"`
	TasksPeak    *int64 `json:"tasks_peak,omitempty"`
	TasksRefused int64  `json:"tasks_refused"`
}

// resourceFigures are the resource figures of a run, settled once.
type resourceFigures struct {
	per      map[*instance]*InstanceResources
	stats    map[*instance]launch.CgroupStats // the kernel's counters, when enforced
	rep      Resources
	memInst  *instance
	loadInst *instance
}

// cgroup returns the kernel's counters of an instance's limit cgroups, as
// settled.
func (f *resourceFigures) cgroup(inst *instance) (launch.CgroupStats, bool) {
	st, ok := f.stats[inst]
	return st, ok
}

func (f *resourceFigures) of(inst *instance) *InstanceResources {
	if f == nil {
		return nil
	}
	return f.per[inst]
}

// samplesNote says when the measured figures come from too few samples.
func (f *resourceFigures) samplesNote() string {
	if !f.rep.FewSamples {
		return ""
	}
	return fmt.Sprintf(" (from only %d samples: a short peak may have been missed)", f.rep.Samples)
}

func (r *runner) allInstances() []*instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*instance(nil), r.instances...)
}

// settleResources takes a last sample of the instances still running and
// fixes the figures the resource checks and the report read.
func (r *runner) settleResources() {
	f := &resourceFigures{per: map[*instance]*InstanceResources{}, stats: map[*instance]launch.CgroupStats{}}
	rep := &f.rep
	rep.Mode, rep.MemoryLimit, rep.ThreadLimit = "measured", r.cfg.MemoryLimit, r.cfg.ThreadLimit
	if r.enforced() {
		rep.Mode, rep.Cgroup = "enforced", r.limitKind
	}
	if r.limitErr != nil {
		rep.NotEnforced = r.notEnforcedWords()
	}
	if sr, ok := r.scenarios[loadScenario]; ok {
		<-sr.done
		if l := sr.res.(*loadResult); l.inst != nil {
			f.loadInst = l.inst
			rep.Load = &LoadFigures{Instance: l.inst.n, Calls: l.calls, Answered: l.answered, LargestBytes: l.largest}
		}
	}
	var memSamples int
	var cgPeakInst *instance
	var cgPeak int64 = -1
	for _, inst := range r.allInstances() {
		if !inst.proc.Exited() {
			inst.proc.Sample()
		}
		u := inst.proc.Usage()
		ir := &InstanceResources{PeakRSS: u.PeakRSS, RSS: RSSSplit{u.AtPeak.Anon, u.AtPeak.File, u.AtPeak.Shmem},
			PeakUnreclaimable: u.PeakUnreclaimable, PeakThreads: u.PeakThreads, ZombiesAtPeak: u.ZombiesAtPeak, Samples: u.Samples}
		if u.Samples > 0 {
			ir.SampledMS = ms(u.Last.Sub(u.First))
		}
		if st, ok := inst.proc.LimitStats(); ok {
			f.stats[inst] = st
			cf := &CgroupFigures{LimitHits: st.LimitHits, OOMKills: st.OOMKills, TasksRefused: st.TasksRefused}
			if st.MemoryPeak >= 0 {
				v := st.MemoryPeak
				cf.Peak = &v
				if v > cgPeak {
					cgPeak, cgPeakInst = v, inst
				}
			}
			if st.TasksPeak >= 0 {
				v := st.TasksPeak
				cf.TasksPeak = &v
				if v > rep.TasksPeak {
					rep.TasksPeak, rep.TasksInstance = v, inst.n
				}
			}
			rep.MemoryFile = st.MemoryFile
			ir.Cgroup = cf
		}
		f.per[inst] = ir
		if u.Samples > 0 && (f.memInst == nil || ir.PeakUnreclaimable > f.per[f.memInst].PeakUnreclaimable) {
			f.memInst, memSamples = inst, u.Samples
		}
		if u.Samples > 0 && (rep.ThreadsInstance == 0 || ir.PeakThreads > rep.Threads) {
			rep.Threads, rep.ThreadsInstance, rep.ThreadsZombies = ir.PeakThreads, inst.n, ir.ZombiesAtPeak
		}
	}
	if f.memInst != nil {
		rep.Memory, rep.MemoryInstance, rep.Samples = f.per[f.memInst].PeakUnreclaimable, f.memInst.n, memSamples
	}
	if r.enforced() {
		// The load's instance decides; without it, the highest peak.
		switch {
		case f.loadInst != nil && f.per[f.loadInst].Cgroup != nil && f.per[f.loadInst].Cgroup.Peak != nil:
			rep.Memory, rep.MemoryInstance = *f.per[f.loadInst].Cgroup.Peak, f.loadInst.n
		case cgPeakInst != nil:
			rep.Memory, rep.MemoryInstance = cgPeak, cgPeakInst.n
		}
	}
	rep.FewSamples = rep.Samples > 0 && rep.Samples < minSamples
	r.res = f
}

// resourceReport fills the report's resource figures.
func (r *runner) resourceReport(rep *Report) {
	f := r.res
	if f == nil {
		return
	}
	res := f.rep
	rep.Resources = &res
	var peak int64
	for _, ir := range f.per {
		peak = max(peak, ir.PeakRSS)
	}
	if res.Samples > 0 {
		rep.Runtime.PeakRSS, rep.Runtime.PeakThreads = peak, res.Threads
	}
}
