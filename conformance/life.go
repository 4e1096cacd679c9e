package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// The life checks judge one instance over a long life: at least LifeCalls
// calls (1,000 by default; --soak: for a duration), one at a time as the
// function manager sends them, cycling through the fixtures. The instance
// starts with the suite and its calls run beside the other checks (the
// timing checks judge against the machine of the moment: their reference
// runs beside it too), so that it costs the run no time of its own. Every
// answer goes through the oracles, as every answer does; the life checks
// judge what only a long life shows: the first failure after N good calls,
// and what each call leaves behind (file descriptors, threads, child
// processes, zombies, unreclaimable memory), as a slope per call.

// DefaultLifeCalls is how many calls the long life makes by default.
const DefaultLifeCalls = 1000

const (
	lifeOwner = "the long life"
	// lifeSampleEvery: the process tree is read every so many calls.
	lifeSampleEvery = 50
	// lifeWarmup calls are made before the first sample that counts: a
	// runtime may open files and start threads on its first calls.
	lifeWarmup = 50
	// leakLeast is the least growth over the run that counts as a leak,
	// with a slope that reaches it.
	leakLeast = 16
	// memoryLeast is the least growth of unreclaimable memory over the
	// run that counts.
	memoryLeast = 16 << 20
	// lifeOvertime is how long the long life may go on once the rest of
	// the suite is done (without --soak, and unless the long life's checks
	// are all that was selected): on a machine so slow that its calls take
	// that much longer, it stops there and says so, rather than make the
	// run wait for it.
	lifeOvertime = 3 * time.Second
	// lifeBudgetMargin: the long life stops when less than this is left
	// of conform's time budget.
	lifeBudgetMargin = 3 * time.Second
)

var lifeScenario = &Scenario[*lifeResult]{Name: "the long life", run: runLifeScenario}

// lifeResult is what the long life observed.
type lifeResult struct {
	harnessErr  error
	notStarted  bool
	inst        *instance
	notReady    error
	interrupted bool
	budget      bool

	calls     int           // calls made
	cut       bool          // stopped before its calls were made: lifeOvertime passed
	ok        int           // calls answered as their fixture answers, before the first failure
	took      time.Duration // the calls' time
	firstFail *callFailure  // the first call not answered as its fixture answers
	samples   []lifeSample
	fdLimit   int // the soft RLIMIT_NOFILE of the runtime's process (0: not known)
}

// callFailure is a call of the long life not answered as its fixture
// answers.
type callFailure struct {
	n     int // its number in the long life, 1-based
	rec   *callRecord
	err   *callErr
	words string
}

// lifeSample is what the instance's process tree held after a number of
// calls.
type lifeSample struct {
	calls    int
	fds      int
	threads  int
	children int // processes of the tree but the runtime, zombies left out
	zombies  int
	memory   int64 // RssAnon + RssShmem of the tree
}

func runLifeScenario(r *runner) *lifeResult {
	defer r.lifeStarted() // however it returns
	res := &lifeResult{}
	select {
	case <-r.schemaReady:
	case <-r.ctx.Done():
	}
	switch {
	case r.ctx.Err() != nil:
		res.interrupted = r.interrupted()
		res.budget = !res.interrupted
		return res
	case r.first.readyErr != nil:
		res.notStarted = true
		return res
	}
	<-r.spawned // the shutdown instance is #2, whatever the scheduler does
	inst, err, notReady := r.scenarioInstance("life", r.lifeStarted)
	res.inst, res.harnessErr, res.notReady = inst, err, notReady
	if err != nil || notReady != nil {
		return res
	}
	defer inst.proc.Cleanup()
	res.fdLimit = fdLimit(inst.proc.PID())
	msgs := lifeMessages(r)
	until := time.Time{}
	if r.cfg.Soak > 0 {
		until = time.Now().Add(r.cfg.Soak)
	}
	want := r.cfg.lifeCalls()
	clock := lifeClock{r: r, until: until}
	for i := 0; r.ctx.Err() == nil && (res.calls < want || !until.IsZero() && time.Now().Before(until)); i++ {
		if clock.cut() {
			res.cut = true
			break
		}
		m := msgs[i%len(msgs)]
		role := r.roleOf(m.FunctionName)
		if r.unusableFixture(role) {
			// The checks on the main instance found it missing or hung:
			// the long life goes on with the others.
			if !r.anyUsable(msgs) {
				break
			}
			continue
		}
		if !res.call(r, inst, m, role) {
			break
		}
	}
	if n := len(res.samples); res.firstFail == nil && (n == 0 || res.samples[n-1].calls != res.calls) {
		if s, ok := sampleTree(inst.proc.PID()); ok {
			s.calls = res.calls
			res.samples = append(res.samples, s)
		}
	}
	res.interrupted = r.interrupted()
	res.budget = !res.interrupted && r.ctx.Err() != nil
	if inst.alive() {
		inst.stop("the long life was over", min(time.Second, r.cfg.Grace))
	}
	return res
}

// lifeClock says when the long life stops before its calls are made.
type lifeClock struct {
	r        *runner
	until    time.Time        // --soak: when it ends
	overtime <-chan time.Time // set once the other scenarios and checks are done
}

// cut reports whether the long life stops now: lifeOvertime after the
// rest of the suite was done (without --soak, unless the long life's
// checks are all the selection), or when what is left of the time budget
// is the shutdown's and the report's.
func (c *lifeClock) cut() bool {
	r := c.r
	if c.overtime == nil && c.until.IsZero() && !r.lifeOnly {
		select {
		case <-r.othersDone:
			c.overtime = time.After(lifeOvertime)
		default:
		}
	}
	if c.overtime != nil {
		select {
		case <-c.overtime:
			return true
		default:
		}
	}
	dl, ok := r.ctx.Deadline()
	return ok && time.Until(dl) < lifeBudgetMargin
}

// call makes one call of the long life and records what it showed: a
// call answered as its fixture answers (and, every lifeSampleEvery calls
// after the warm-up, a sample of the process tree), or the first that was
// not. It reports whether the long life goes on.
func (res *lifeResult) call(r *runner, inst *instance, m *client.Message, role string) bool {
	t0 := time.Now()
	_, cerr := inst.call(r.ctx, lifeOwner, m, loadTimeout(len(m.Payload)))
	res.took += time.Since(t0)
	r.learn(lifeOwner, m.FunctionName, cerr)
	res.calls++
	if words := asFixtureAnswers(role, cerr); words != "" {
		if cerr != nil && (cerr.kind == kindMissing || cerr.kind == kindNoService || cerr.kind == kindInterrupted || cerr.kind == kindBudget) {
			res.calls--
			return true
		}
		var rec *callRecord
		if cerr != nil {
			rec = cerr.rec
		}
		if cerr != nil && cerr.kind == kindNoAnswer {
			words = fmt.Sprintf("%s, after it answered %d calls", words, inst.answered())
			inst.markHung(fmt.Sprintf("no answer within %s to %s", cerr.rec.end.Sub(cerr.rec.start).Round(time.Millisecond), cerr.rec.describeCall()))
		}
		res.firstFail = &callFailure{n: res.calls, rec: rec, err: cerr, words: words}
		return false
	}
	res.ok++
	if res.calls >= lifeWarmup && (res.calls-lifeWarmup)%lifeSampleEvery == 0 {
		if s, ok := sampleTree(inst.proc.PID()); ok {
			s.calls = res.calls
			res.samples = append(res.samples, s)
		}
	}
	return true
}

// anyUsable reports whether any message's fixture can still be called.
func (r *runner) anyUsable(msgs []*client.Message) bool {
	for _, m := range msgs {
		if !r.unusableFixture(r.roleOf(m.FunctionName)) {
			return true
		}
	}
	return false
}

// asFixtureAnswers says how a call was not answered as its fixture
// answers ("" when it was): OK from all but fail, a non-OK status carrying
// "conformance failure" from fail.
func asFixtureAnswers(role string, err *callErr) string {
	if role == "fail" {
		switch {
		case err == nil:
			return "the fail fixture answered OK"
		case err.kind != kindAnswered:
			return err.describe()
		case !strings.Contains(err.status.Message(), "conformance failure"):
			return "answered " + err.statusText() + ", without the function's message"
		}
		return ""
	}
	if err != nil {
		return err.describe()
	}
	return ""
}

// lifeMessages are the calls of the long life, in the order it cycles
// through them: small echoes of each kind, and the context, none and fail
// fixtures (no sleep: the long life runs beside the other checks, and its
// time is the run's).
func lifeMessages(r *runner) []*client.Message {
	echo := r.cfg.fn("echo")
	out := []*client.Message{
		{FunctionName: echo, Payload: []byte(`{"life":true,"n":[1,2,3]}`)},
		{FunctionName: echo, Payload: []byte("a line of text\n")},
		{FunctionName: echo, Payload: append([]byte{0xff}, randomBytes(1023)...)},
		{ID: 42, QOS: 1, Topic: "oe-rt/conform/life", FunctionName: r.cfg.fn("context"), Payload: []byte(`{}`), FunctionInvokeID: "oe-rt-life-" + randomHex(4)},
		{FunctionName: echo},
		{FunctionName: r.cfg.fn("none"), Payload: []byte(`{}`)},
		{FunctionName: r.cfg.fn("fail"), Payload: []byte(`{"fail":true}`)},
	}
	return out
}

// sampleTree reads what the process tree rooted at pid holds now.
func sampleTree(pid int) (lifeSample, bool) {
	var s lifeSample
	tree := launch.Tree(pid)
	if len(tree) == 0 {
		return s, false
	}
	for i, p := range tree {
		if p.State == 'Z' {
			s.zombies++
			continue
		}
		if i > 0 {
			s.children++
		}
		s.threads += p.Threads
		if ents, err := os.ReadDir("/proc/" + strconv.Itoa(p.Pid) + "/fd"); err == nil {
			s.fds += len(ents)
		}
		s.memory += unreclaimable(p.Pid)
	}
	return s, true
}

// unreclaimable reads RssAnon + RssShmem of a process, in bytes.
func unreclaimable(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && (k == "RssAnon" || k == "RssShmem") {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				n += kb << 10
			}
		}
	}
	return n
}

// fdLimit reads the soft limit on open files of a process (0: not known).
func fdLimit(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// slope is the least-squares slope of y over x, per unit of x.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// growth is how one figure moved with the calls.
type growth struct {
	name        string  // "fd", "thread", "child process", "zombie"
	from, to    float64 // first and last sample
	perCall     float64 // the slope
	limit       float64 // what it runs into (0: nothing known)
	limitWords  string  // "the 1,024 fd limit"
	calls       int     // calls over which it was observed
	lastAtCalls int
}

// leaks reports whether the figure grew with the calls: by at least least
// over the run, at a slope that accounts for it.
func (g growth) leaks(least float64) bool {
	return g.to-g.from >= least && g.perCall*float64(g.calls) >= least
}

// projection says when the growth reaches its limit: "1 fd per call: the
// 1,024 fd limit is reached after about 1,010 calls".
func (g growth) projection() string {
	rate := perCallWords(g.perCall, g.name)
	if g.limit <= 0 || g.perCall <= 0 {
		return rate
	}
	left := (g.limit - g.to) / g.perCall
	at := g.lastAtCalls + int(math.Max(0, math.Round(left)))
	if g.to >= g.limit {
		return fmt.Sprintf("%s: %s was reached within %s calls", rate, g.limitWords, thousands(g.lastAtCalls))
	}
	return fmt.Sprintf("%s: %s is reached after about %s calls", rate, g.limitWords, thousands(at))
}

// perCallWords renders a rate: "1 fd per call", "1 thread every 10 calls".
func perCallWords(r float64, name string) string {
	switch {
	case r >= 0.95:
		n := math.Round(r*10) / 10
		if n == 1 {
			return "1 " + name + " per call"
		}
		return fmt.Sprintf("%s %s per call", strconv.FormatFloat(n, 'f', -1, 64), plurals(name))
	case r > 0:
		return fmt.Sprintf("1 %s every %s calls", name, thousands(int(math.Round(1/r))))
	}
	return "no growth"
}

// plurals is the plural of a figure's name.
func plurals(name string) string {
	if name == "child process" {
		return "child processes"
	}
	return name + "s"
}

// thousands renders n with thousands separators: 1,024.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// growths computes how each figure moved over the samples.
func (l *lifeResult) growths(threadLimit int) []growth {
	if len(l.samples) < 2 {
		return nil
	}
	xs := make([]float64, len(l.samples))
	for i, s := range l.samples {
		xs[i] = float64(s.calls)
	}
	first, last := l.samples[0], l.samples[len(l.samples)-1]
	span := last.calls - first.calls
	mk := func(name string, get func(lifeSample) float64, limit float64, limitWords string) growth {
		ys := make([]float64, len(l.samples))
		for i, s := range l.samples {
			ys[i] = get(s)
		}
		return growth{name: name, from: get(first), to: get(last), perCall: slope(xs, ys), limit: limit, limitWords: limitWords, calls: span, lastAtCalls: last.calls}
	}
	fdWords := ""
	if l.fdLimit > 0 {
		fdWords = fmt.Sprintf("the %s fd limit", thousands(l.fdLimit))
	}
	tl := float64(threadLimit)
	tw := fmt.Sprintf("the %d-thread limit of container mode (pids.max counts threads and processes)", threadLimit)
	return []growth{
		mk("fd", func(s lifeSample) float64 { return float64(s.fds) }, float64(l.fdLimit), fdWords),
		mk("thread", func(s lifeSample) float64 { return float64(s.threads) }, tl, tw),
		mk("child process", func(s lifeSample) float64 { return float64(s.children) }, tl, tw),
		mk("zombie", func(s lifeSample) float64 { return float64(s.zombies) }, tl, tw),
	}
}

// memoryGrowth is how unreclaimable memory moved, in bytes.
func (l *lifeResult) memoryGrowth(limit int64) growth {
	if len(l.samples) < 2 {
		return growth{}
	}
	xs := make([]float64, len(l.samples))
	ys := make([]float64, len(l.samples))
	for i, s := range l.samples {
		xs[i], ys[i] = float64(s.calls), float64(s.memory)
	}
	first, last := l.samples[0], l.samples[len(l.samples)-1]
	return growth{name: "byte", from: float64(first.memory), to: float64(last.memory), perCall: slope(xs, ys),
		limit: float64(limit), limitWords: "the " + limitSize(limit) + " memory limit", calls: last.calls - first.calls, lastAtCalls: last.calls}
}

// unusable says why the long life cannot be judged, or nil.
func (l *lifeResult) unusable() *Outcome {
	if o := startUnusable("the long life", l.inst, l.interrupted, l.notStarted, l.harnessErr, l.notReady); o != nil {
		return o
	}
	if l.calls == 0 {
		o := notRun("the long life made no call (no fixture to call)")
		return &o
	}
	return nil
}

func (c *checkCtx) life() *lifeResult { return resultOf(c, lifeScenario) }

var lifeCallsCheck = &Check{ID: "life.calls", Level: MUST, phase: phaseEnd, Requires: []Requirement{lifeScenario},
	Description: "one instance answers 1,000 calls in a row (or --soak's duration of them), each as its fixture answers",
	Hint: "Look at the call number of the first failure and the output shown: something that runs out after N calls — a pool of handles or connections never given back, a counter or buffer that overflows, a cache that grows until it fails, a limit on calls per process.\n" +
		"Python: objects kept in a module-level list, files opened without with; Node: listeners added per call, unbounded Maps; grpc-go: goroutines that never return.",
	run: checkLifeCalls}

func checkLifeCalls(c *checkCtx) Outcome {
	l := c.life()
	if o := l.unusable(); o != nil {
		return *o
	}
	if f := l.firstFail; f != nil {
		call := fmt.Sprintf("call %s of the long life", thousands(f.n))
		if f.rec != nil {
			call = fmt.Sprintf("call #%d to %s on instance #%d (life), %s", f.rec.seq, f.rec.function, l.inst.n, call)
		}
		o := fail("the first failure came after %s OK calls: %s: %s", thousands(l.ok), call, f.words)
		if f.rec != nil {
			o.output = l.inst.lines(f.rec.start, f.rec.end.Add(50*time.Millisecond))
		}
		return o
	}
	if l.budget {
		return notRun("conform's time budget ran out after %s calls of the long life, all answered as their fixtures answer", thousands(l.calls))
	}
	cut := ""
	if l.cut {
		cut = fmt.Sprintf(" (of the %s asked: conform stopped the long life %s after the rest of the suite was done, or when its time budget was nearly spent, not to make the run wait for it; the machine was slow)",
			thousands(c.cfg().lifeCalls()), dur(lifeOvertime))
	}
	o := pass("%s calls in a row on instance #%d, each answered as its fixture answers, in %s%s", thousands(l.calls), l.inst.n, dur(l.took), cut)
	o.figures = map[string]float64{"calls": float64(l.calls), "ms": ms(l.took)}
	return o
}

var lifeLeaks = &Check{ID: "life.leaks", Level: MUST, phase: phaseEnd, Requires: []Requirement{lifeScenario},
	Description: "over the long life, open file descriptors, threads, child processes and zombies do not grow with the calls",
	Hint:        "Give back what a call takes: close files and sockets (Python with, Node stream.destroy(), Go defer f.Close()); reuse a bounded pool of threads or workers; wait() for every child process (a child never waited for stays a zombie); do not start a process or a thread per call.",
	run:         checkLifeLeaks}

func checkLifeLeaks(c *checkCtx) Outcome {
	l := c.life()
	if o := l.unusable(); o != nil {
		return *o
	}
	gs := l.growths(c.cfg().ThreadLimit)
	if gs == nil {
		return notRun("too few samples of the runtime's process tree over the long life (%d calls; no /proc?)", l.calls)
	}
	var leaks, seen []string
	for _, g := range gs {
		seen = append(seen, fmt.Sprintf("%s %s → %s", plurals(g.name), thousands(int(g.from)), thousands(int(g.to))))
		if g.leaks(leakLeast) {
			w := fmt.Sprintf("%s (%s %s → %s over %s calls)", g.projection(), plurals(g.name), thousands(int(g.from)), thousands(int(g.to)), thousands(g.calls))
			if g.name == "zombie" {
				w += ": child processes that ended and were never waited for"
			}
			leaks = append(leaks, w)
		}
	}
	span := l.samples[len(l.samples)-1].calls - l.samples[0].calls
	if len(leaks) > 0 {
		o := fail("over %s calls on instance #%d: %s", thousands(span), l.inst.n, strings.Join(leaks, "; "))
		o.output = l.inst.lines(l.inst.proc.StartTime(), time.Now())
		return o
	}
	return pass("over %s calls on instance #%d nothing grew with the calls: %s (%d samples)", thousands(span), l.inst.n, strings.Join(seen, ", "), len(l.samples))
}

var lifeMemory = &Check{ID: "life.memory", Level: SHOULD, phase: phaseEnd, Requires: []Requirement{lifeScenario},
	Description: "over the long life, unreclaimable memory (RssAnon + RssShmem) does not grow with the calls",
	Hint: "Memory that grows with every call runs into the container's limit: look for what a call adds and nothing takes away — a module-level list or dict, a cache without a bound, listeners or closures kept per call, buffers kept after the answer.\n" +
		"Node: --max-old-space-size bounds the heap, a leak still grows until it is killed; Python: tracemalloc shows what grows; grpc-go: pprof's heap profile.",
	run: checkLifeMemory}

func checkLifeMemory(c *checkCtx) Outcome {
	l := c.life()
	if o := l.unusable(); o != nil {
		return *o
	}
	g := l.memoryGrowth(c.cfg().MemoryLimit)
	if g.calls == 0 {
		return notRun("too few samples of the runtime's memory over the long life (%d calls; no /proc?)", l.calls)
	}
	// Growth only counts when it goes on: the second half of the life
	// grows too, at half the rate or more (a heap that settles is not a
	// leak).
	half := &lifeResult{samples: l.samples[len(l.samples)/2:]}
	h := half.memoryGrowth(c.cfg().MemoryLimit)
	if g.leaks(memoryLeast) && h.perCall >= g.perCall/2 {
		kib := g.perCall / 1024
		return fail("over %s calls on instance #%d unreclaimable memory grew %s → %s, about %.1f KiB per call: %s is reached after about %s calls",
			thousands(g.calls), l.inst.n, mib(int64(g.from)), mib(int64(g.to)), kib, g.limitWords, thousands(g.lastAtCalls+int(math.Max(0, (g.limit-g.to)/g.perCall))))
	}
	return pass("over %s calls on instance #%d unreclaimable memory did not grow with the calls (%s → %s)", thousands(g.calls), l.inst.n, mib(int64(g.from)), mib(int64(g.to)))
}
