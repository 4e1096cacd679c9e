package conformance

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// T is what a check's function works with: the shared instance of the
// runtime, a client for it, and the suite's configuration.
type T struct {
	ctx  context.Context
	r    *runner
	inst *instance
}

// call calls the shared instance with a deadline.
func (t *T) call(m *client.Message, timeout time.Duration) (*client.Message, error) {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	return t.inst.cli.Call(ctx, m)
}

// fn is the function name serving a fixture role.
func (t *T) fn(role string) string { return t.r.cfg.fn(role) }

// repro renders an `oe-rt call` line for m.
func (t *T) repro(m *client.Message, extra ...string) string {
	parts := []string{"oe-rt", "call", "--address", t.inst.addr}
	if t.r.cfg.Profile == ProfileBaetyl && t.r.cfg.Schema == nil {
		parts = append(parts, "--profile", "baetyl")
	}
	if m.ID != 0 {
		parts = append(parts, "--id", fmt.Sprint(m.ID))
	}
	if m.QOS != 0 {
		parts = append(parts, "--qos", fmt.Sprint(m.QOS))
	}
	if m.Topic != "" {
		parts = append(parts, "--topic", shellQuote(m.Topic))
	}
	if m.FunctionInvokeID != "" {
		parts = append(parts, "--invoke-id", shellQuote(m.FunctionInvokeID))
	}
	parts = append(parts, extra...)
	parts = append(parts, shellQuote(m.FunctionName))
	if len(m.Payload) > 0 {
		if len(m.Payload) <= 80 && printable(m.Payload) {
			parts = append(parts, shellQuote(string(m.Payload)))
		} else {
			parts = append(parts, fmt.Sprintf("@payload.bin  # %d bytes", len(m.Payload)))
		}
	}
	return strings.Join(parts, " ")
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

type runner struct {
	cfg       *Config
	log       *slog.Logger
	cgroup    *cgroup
	cgroupErr error
	mu        sync.Mutex
	all       []*instance
	fixtures  map[string]bool // role -> served
	main      *instance
	seqP50    time.Duration
	seqP99    time.Duration
	shutdown  shutdownOnce
}

func (r *runner) track(inst *instance) {
	r.mu.Lock()
	r.all = append(r.all, inst)
	r.mu.Unlock()
}

// Run runs the selected checks against the runtime and returns the report.
// An error means the harness itself could not run (bad configuration, no
// program); a runtime that misbehaves is reported in the Report. When Run
// returns, no process it started is alive.
func Run(ctx context.Context, cfg *Config) (*Report, error) {
	if err := Validate(catalog); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := *cfg // the run may fill in Schema; the caller's value stays as it was
	cfg = &c
	r := &runner{cfg: cfg, log: discard(cfg.Logger), fixtures: map[string]bool{}}
	selected := selection(cfg)
	rep := &Report{Started: time.Now(), Strict: cfg.Strict}
	rep.Runtime = Runtime{Command: cfg.Command, Dir: cfg.Dir, Profile: cfg.Profile, Service: cfg.schema().Service()}

	var results []Result
	var resMu sync.Mutex
	record := func(c *Check, o Outcome, d time.Duration, inst *instance) {
		res := Result{ID: c.ID, Level: c.Level, Description: c.Description, Status: o.Status, Message: o.Message, Duration: d, DurationMS: ms(d), Repro: o.Repro}
		if res.Status == Fail && c.Level != MUST {
			res.Status = Warn
		}
		if (res.Status == Fail || res.Status == Warn) && inst != nil {
			res.StderrTail = inst.stderrTail(20)
		}
		resMu.Lock()
		results = append(results, res)
		resMu.Unlock()
		if cfg.OnResult != nil {
			cfg.OnResult(res)
		}
	}

	if cfg.CgroupLimits {
		cg, err := newCgroup(cfg.MemoryLimit, cfg.ThreadLimit)
		if err != nil {
			r.log.Warn("cgroup limits unavailable", "reason", err.Error())
			r.cgroupErr = err // resources.limits reports it
		} else {
			r.cgroup = cg
			defer cg.remove()
		}
	}

	defer func() {
		// Whatever happened, nothing outlives Run.
		for _, inst := range r.all {
			inst.stop(0)
		}
	}()

	main, err := r.startInstance(ctx, "oe-rt-conform")
	if err != nil {
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	r.main = main
	rep.Runtime.Address = main.addr
	if main.readyErr == nil {
		rep.Runtime.ReadyMS = ms(main.ready)
		services, err := r.discover(ctx, main)
		if err != nil {
			return nil, err
		}
		rep.Runtime.Reflection = services
		rep.Runtime.Service = r.cfg.schema().Service()
		r.detectFixtures(ctx, main)
	}
	for _, role := range Roles {
		if r.fixtures[role] {
			rep.Runtime.Fixtures = append(rep.Runtime.Fixtures, role)
		} else {
			rep.Runtime.MissingRoles = append(rep.Runtime.MissingRoles, role)
		}
	}

	runOne := func(c *Check) {
		start := time.Now()
		var o Outcome
		switch {
		case main.readyErr != nil && c.ID != "start.listen":
			o = skip("%s", errNotStarted)
		case missing(r, c) != "":
			o = skip("%s", missing(r, c))
		default:
			o = c.run(&T{ctx: ctx, r: r, inst: main})
		}
		if ctx.Err() != nil && o.Status != Pass {
			o = skip("interrupted")
		}
		record(c, o, time.Since(start), main)
	}
	runPhase := func(p phase, concurrent bool) {
		var wg sync.WaitGroup
		for _, c := range catalog {
			if c.phase != p || !selected[c.ID] {
				continue
			}
			if !concurrent {
				runOne(c)
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); runOne(c) }()
		}
		wg.Wait()
	}

	// The shutdown checks get a fresh instance of their own, beside the
	// others.
	var shutdownWG sync.WaitGroup
	shutdownWG.Add(1)
	go func() {
		defer shutdownWG.Done()
		runPhase(phaseShutdown, true)
	}()
	runPhase(phaseStart, true)
	runPhase(phaseCalls, true)
	runPhase(phaseLarge, false)
	runPhase(phaseTiming, false)
	shutdownWG.Wait()
	runPhase(phaseEnd, true)

	main.stop(cfg.Grace)
	if e, ok := main.proc.ExitStatus(); ok {
		code := e.Code
		rep.Runtime.ExitStatus = &code
		rep.Runtime.Exit = e.String()
	}
	u := r.usage()
	rep.Runtime.PeakRSS, rep.Runtime.PeakThreads = u.PeakRSS, u.PeakThreads
	rep.Runtime.CallP50MS, rep.Runtime.CallP99MS = ms(r.seqP50), ms(r.seqP99)
	rep.Runtime.StderrTail = main.stderrTail(20)
	o, e := main.proc.OutputBytes()
	rep.Runtime.OutputBytes = o + e

	rep.Checks = results
	rep.Duration = time.Since(rep.Started)
	rep.WallMS = ms(rep.Duration)
	rep.finish()
	if ctx.Err() != nil {
		return rep, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return rep, nil
}

// usage is the largest of the instances' peaks.
func (r *runner) usage() launch.Usage {
	var u launch.Usage
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inst := range r.all {
		x := inst.proc.Usage()
		if x.PeakRSS > u.PeakRSS {
			u.PeakRSS = x.PeakRSS
		}
		if x.PeakThreads > u.PeakThreads {
			u.PeakThreads = x.PeakThreads
		}
		u.Samples += x.Samples
	}
	return u
}

func selection(cfg *Config) map[string]bool {
	ids := Select(cfg.Run)
	if len(cfg.Run) == 0 {
		ids = Select([]string{"*"})
	}
	sel := map[string]bool{}
	for _, id := range ids {
		sel[id] = true
	}
	for _, id := range Select(cfg.Skip) {
		delete(sel, id)
	}
	// resources.limits is opt-in: it runs with the cgroup limits, or when
	// asked for by name (and then says how to turn the limits on).
	if cfg.CgroupLimits {
		sel[limitsCheck.ID] = true
	} else if len(cfg.Run) == 0 {
		delete(sel, limitsCheck.ID)
	}
	return sel
}

// detectFixtures finds which fixture roles the runtime serves: a role whose
// function answers NOT_FOUND or UNIMPLEMENTED is missing.
func (r *runner) detectFixtures(ctx context.Context, inst *instance) {
	probes := map[string][]byte{"echo": []byte("oe-rt"), "context": []byte("{}"), "none": nil, "fail": nil, "sleep": []byte(`{"ms":0}`)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, role := range Roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := inst.cli.Call(cctx, &client.Message{FunctionName: r.cfg.fn(role), Payload: probes[role], FunctionInvokeID: "oe-rt-probe"})
			c := status.Code(err)
			mu.Lock()
			r.fixtures[role] = c != codes.NotFound && c != codes.Unimplemented && c != codes.Unavailable
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// missing says why a check cannot run for want of a fixture, or "".
func missing(r *runner, c *Check) string {
	for _, role := range c.Needs {
		if !r.fixtures[role] {
			fn := r.cfg.fn(role)
			return fmt.Sprintf("the runtime does not serve the %s fixture (function %q answered NOT_FOUND): configure a function named %q that %s (docs/conformance.md#fixtures), or map the role with --function %s=NAME",
				role, fn, fn, fixtureContract[role], role)
		}
	}
	return ""
}

var fixtureContract = map[string]string{
	"echo":    "returns its payload unchanged",
	"context": `returns {"messageQOS","messageTopic","functionName","functionInvokeID"} of the call`,
	"none":    "returns nothing",
	"fail":    `raises an error whose message contains "conformance failure"`,
	"sleep":   `waits {"ms": N} milliseconds and returns its payload`,
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
