package conformance

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/shellquote"
)

// Verdict is what a run means, in one word.
type Verdict string

// The verdicts.
const (
	// Passed: every selected MUST check ran and passed (with Strict, every
	// SHOULD and MAY too).
	Passed Verdict = "passed"
	// Failed: a check failed, or a check that counts did not run.
	Failed Verdict = "failed"
	// Interrupted: the caller cancelled the run before it ended.
	Interrupted Verdict = "interrupted"
	// Errored: the harness could not run a check that counts.
	Errored Verdict = "error"
)

// Result is one check's result in a report.
type Result struct {
	ID          string        `json:"id"`
	Level       Level         `json:"level"`
	Description string        `json:"description"`
	Status      Status        `json:"status"`
	Message     string        `json:"message"`
	Duration    time.Duration `json:"-"`
	DurationMS  float64       `json:"duration_ms"`
	// Instance is the number of the instance the check ran on (0: none).
	Instance int `json:"instance,omitempty"`
	// Repro is an `oe-rt call` line that reproduces a failure against the
	// runtime started as Runtime.StartByHand says.
	Repro string `json:"reproduce,omitempty"`
	// Output is what the check's instance wrote while the check ran (the
	// last 20 lines, at most 4 KiB), for a result that did not pass.
	Output  []OutputLine       `json:"output,omitempty"`
	Figures map[string]float64 `json:"figures,omitempty"`
	// Hint says how to fix a failure (the check's Hint), for a result that
	// failed or warned; `oe-rt conform --explain ID` says more.
	Hint string `json:"hint,omitempty"`

	// With Config.Repeat: Runs is how many runs the check ran to a verdict
	// in (pass, fail or warn), Failures how many of them failed or warned,
	// NotRun how many runs it did not run in; Stability and FlakeRate
	// (Failures/Runs) say what that means; Run is the run the message,
	// output and reproduce line come from.
	Runs      int       `json:"runs,omitempty"`
	Failures  int       `json:"failures,omitempty"`
	NotRun    int       `json:"not_run,omitempty"`
	Stability Stability `json:"stability,omitempty"`
	FlakeRate float64   `json:"flake_rate,omitempty"`
	Run       int       `json:"run,omitempty"`

	// With Config.Baseline: what the baseline says of this result (known,
	// regression, new, improvement; empty when nothing), and in words.
	Baseline     BaselineMark `json:"baseline,omitempty"`
	BaselineNote string       `json:"baseline_note,omitempty"`
}

// OutputLine is one line a runtime wrote.
type OutputLine struct {
	Instance int     `json:"instance"`
	MS       float64 `json:"t_ms"` // since the run started
	Stream   string  `json:"stream"`
	Text     string  `json:"text"`
}

// CallReport is a call on the record.
type CallReport struct {
	Owner    string  `json:"owner"`
	Function string  `json:"function"`
	StartMS  float64 `json:"start_ms"`
	EndMS    float64 `json:"end_ms,omitempty"`
	Status   string  `json:"status,omitempty"`
}

// InstanceReport is one instance's life.
type InstanceReport struct {
	// Run is the run it belongs to, with Config.Repeat.
	Run       int      `json:"run,omitempty"`
	N         int      `json:"n"`
	Role      string   `json:"role"`
	Pid       int      `json:"pid"`
	Address   string   `json:"address"`
	StartedMS float64  `json:"started_ms"`
	ReadyMS   *float64 `json:"ready_ms,omitempty"` // from exec to the first connection
	NotReady  string   `json:"not_ready,omitempty"`
	EndedMS   *float64 `json:"ended_ms,omitempty"`
	Exit      string   `json:"exit,omitempty"`
	// ByItself: it ended without being asked to.
	ByItself bool `json:"ended_by_itself,omitempty"`
	// StoppedBy says why conform stopped it; StopMS when it asked.
	StoppedBy string   `json:"stopped_by,omitempty"`
	StopMS    *float64 `json:"stop_ms,omitempty"`
	// Checks ran on it.
	Checks []string `json:"checks,omitempty"`
	// Calls is how many calls conform made to it; Failed lists those that
	// did not end OK; InFlight those in flight when it ended that it did
	// not answer (an answer that came with the exit is not listed).
	Calls    int          `json:"calls"`
	Failed   []CallReport `json:"failed_calls,omitempty"`
	InFlight []CallReport `json:"in_flight_at_end,omitempty"`
	// Resources is what the instance used (see resources.go).
	Resources *InstanceResources `json:"resources,omitempty"`
}

// Runtime describes the runtime the suite ran against. Figures that were
// not measured are absent.
type Runtime struct {
	Command []string `json:"command"`
	Dir     string   `json:"dir,omitempty"`
	Profile Profile  `json:"profile"`
	Service string   `json:"service"`
	Address string   `json:"address"`
	// StartByHand starts the runtime as conform did, on the address the
	// reproduce lines use.
	StartByHand string   `json:"start_by_hand"`
	ExitStatus  *int     `json:"exit_status,omitempty"`
	Exit        string   `json:"exit,omitempty"`
	ReadyMS     *float64 `json:"ready_ms,omitempty"`
	FirstCallMS *float64 `json:"first_call_ms,omitempty"`
	PeakRSS     int64    `json:"peak_rss_bytes,omitempty"`
	PeakThreads int      `json:"peak_threads,omitempty"`
	CallP50MS   *float64 `json:"call_p50_ms,omitempty"`
	CallP99MS   *float64 `json:"call_p99_ms,omitempty"`
	// Fixtures answered a call; MissingRoles answered NOT_FOUND or
	// UNIMPLEMENTED. A role never called is in neither.
	Fixtures     []string `json:"fixtures,omitempty"`
	MissingRoles []string `json:"missing_fixtures,omitempty"`
	OutputBytes  int64    `json:"output_bytes"`
	// Reflection lists the services the runtime's server reflection
	// reports (empty when it offers none).
	Reflection []string `json:"reflection_services,omitempty"`
	Restarts   int      `json:"restarts"`
	// Config is the configuration file given as the master gives it.
	Config string `json:"config,omitempty"`
	// MasterAPI lists the requests the runtime made to the master API,
	// every one of them refused.
	MasterAPI []APIRequest `json:"master_api_requests,omitempty"`
	// Image is the image, in container mode (--image).
	Image *ImageReport `json:"image,omitempty"`
	// CreateToAnswerMS is, in container mode, the time from the main
	// instance's container create to the first call it answered OK.
	CreateToAnswerMS *float64 `json:"create_to_first_answer_ms,omitempty"`
}

// ImageReport describes the image of container mode.
type ImageReport struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	Size       int64    `json:"size_bytes"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user"`
	WorkingDir string   `json:"working_dir,omitempty"`
	Network    string   `json:"network,omitempty"`
}

// APIRequest is a request an instance made to the master API.
type APIRequest struct {
	Instance int     `json:"instance,omitempty"` // 0: conform could not tell whose
	Pid      int     `json:"pid,omitempty"`
	MS       float64 `json:"t_ms"`
	Method   string  `json:"method"`
	Path     string  `json:"path"`
	Status   int     `json:"status"`
	Answer   string  `json:"answer,omitempty"`
}

// Report is the suite's result.
type Report struct {
	// OeRtVersion is the version of oe-rt that made the report, and
	// CatalogVersion the version of its catalog (see Check.Since), so that
	// a report read back as a baseline is read correctly.
	OeRtVersion    string        `json:"oe_rt_version,omitempty"`
	CatalogVersion int           `json:"catalog_version"`
	Started        time.Time     `json:"started"`
	Duration       time.Duration `json:"-"`
	WallMS         float64       `json:"duration_ms"`
	Strict         bool          `json:"strict"`
	// Seed is the seed the sweep's payloads were drawn from
	// (Config.Seed): --seed with it replays them exactly.
	Seed uint64 `json:"seed,omitempty"`
	// Verdict is the raw verdict: the verdict rules applied to the
	// results, whatever a baseline says (see Baseline.Verdict, and Gate).
	Verdict Verdict `json:"verdict"`
	// Passed is Verdict == Passed.
	Passed bool `json:"passed"`
	// Reason says in one line why the run did not pass.
	Reason string `json:"reason,omitempty"`
	// Baseline, with Config.Baseline, is the run judged against an earlier
	// report: its own verdict, the known failures, regressions and
	// improvements.
	Baseline *BaselineReport `json:"baseline,omitempty"`
	// Repeat is how many times the suite ran (Config.Repeat; absent for
	// one run), and Runs each run's verdict.
	Repeat      int              `json:"repeat,omitempty"`
	Runs        []RunSummary     `json:"runs,omitempty"`
	Calibration *Calibration     `json:"calibration,omitempty"`
	Runtime     Runtime          `json:"runtime"`
	Instances   []InstanceReport `json:"instances"`
	Checks      []Result         `json:"checks"`
	Counts      Counts           `json:"counts"`
	// Artifacts is the directory of the payload files the reproduce lines
	// name.
	Artifacts string `json:"artifacts,omitempty"`
	// Resources says how memory and threads were judged (measured or
	// enforced) and the figures the resource checks read.
	Resources *Resources `json:"resources,omitempty"`
	// SameCause groups the checks that failed with the same error.
	SameCause []SameCause `json:"same_cause,omitempty"`
}

// Counts tallies the statuses.
type Counts struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Skip  int `json:"skip"`
	Error int `json:"error"`
}

// sortByCatalog sorts results into catalog order.
func sortByCatalog(results []Result) {
	order := map[string]int{}
	for i, c := range catalog {
		order[c.ID] = i
	}
	sort.SliceStable(results, func(i, j int) bool { return order[results[i].ID] < order[results[j].ID] })
}

// Finish sorts the results into catalog order and decides the counts and
// the verdict. Run calls it; printers' tests may call it on a report built
// by hand.
func (r *Report) Finish(interrupted bool) {
	sortByCatalog(r.Checks)
	if r.CatalogVersion == 0 {
		r.CatalogVersion = CatalogVersion
	}
	r.Counts = Counts{}
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			r.Counts.Pass++
		case Fail:
			r.Counts.Fail++
		case Warn:
			r.Counts.Warn++
		case Skip:
			r.Counts.Skip++
		case Error:
			r.Counts.Error++
		}
	}
	r.Verdict, r.Reason = judge(r.Checks, r.Strict, interrupted, nil, flakyLabel)
	r.Passed = r.Verdict == Passed
}

// judge applies the verdict rules to results: every MUST (with strict,
// every check) must have run and passed. Results excused says so (the
// known failures of a baseline) do not count; nothing else is ever
// excused — a check that did not run or could not run counts whatever a
// baseline says. label names a result in the reason.
func judge(checks []Result, strict, interrupted bool, excused func(Result) bool, label func(Result) string) (Verdict, string) {
	var failed, notRun, errs []string
	ran := 0
	for _, c := range checks {
		counts := c.Level == MUST || strict
		if c.Status == Pass || c.Status == Fail || c.Status == Warn {
			ran++
		}
		if excused != nil && excused(c) {
			continue
		}
		switch {
		case c.Status == Fail, c.Status == Warn && strict:
			failed = append(failed, label(c))
		case c.Status == Skip && counts:
			notRun = append(notRun, label(c))
		case c.Status == Error && counts:
			errs = append(errs, label(c))
		}
	}
	switch {
	case interrupted:
		return Interrupted, fmt.Sprintf("interrupted: %d of %d checks ran to a verdict", ran, len(checks))
	case len(failed) > 0 || len(notRun) > 0:
		var parts []string
		if len(failed) > 0 {
			parts = append(parts, "failed: "+strings.Join(failed, ", "))
		}
		if len(notRun) > 0 {
			level := "MUST"
			if strict {
				level = "selected"
			}
			parts = append(parts, fmt.Sprintf("%s %s not run: %s", level, plural(len(notRun), "check", "checks"), strings.Join(notRun, ", ")))
		}
		if len(errs) > 0 {
			parts = append(parts, "conform could not run: "+strings.Join(errs, ", "))
		}
		return Failed, strings.Join(parts, "; ")
	case len(errs) > 0:
		return Errored, "conform could not run: " + strings.Join(errs, ", ")
	}
	return Passed, ""
}

// flakyLabel names a result, with its flake rate when it is flaky.
func flakyLabel(r Result) string {
	if r.Stability == Flaky {
		return fmt.Sprintf("%s (flaky: failed %d of %d runs)", r.ID, r.Failures, r.Runs)
	}
	return r.ID
}

// report assembles the run's report.
func (r *runner) report() *Report {
	rep := &Report{Started: r.started, Strict: r.cfg.Strict, Seed: r.cfg.Seed, Artifacts: r.artifacts}
	rt := &rep.Runtime
	*rt = Runtime{Command: r.cfg.Command, Dir: r.cfg.Dir, Profile: r.cfg.Profile, Service: r.schema().Service(),
		Address: r.first.addr, Restarts: r.restarts, Reflection: r.reflection}
	rt.StartByHand = r.startByHand()
	rt.Config = r.cfg.ConfigFile
	reqs, _ := r.master.requests()
	for _, q := range reqs {
		rt.MasterAPI = append(rt.MasterAPI, APIRequest{Instance: q.inst, Pid: q.pid, MS: ms(q.at.Sub(r.started)),
			Method: q.method, Path: q.path, Status: q.status, Answer: q.answer})
	}
	if r.first.readyErr == nil {
		v := ms(r.first.readyIn)
		rt.ReadyMS = &v
		if fc := r.first.firstAnswer(); fc > 0 {
			v := ms(fc)
			rt.FirstCallMS = &v
		}
	}
	r.containerReport(rt)
	r.mu.Lock()
	main := r.main
	instances := append([]*instance(nil), r.instances...)
	rep.Checks = append([]Result(nil), r.results...)
	for _, role := range Roles {
		f := r.fixtures[role]
		switch {
		case f.served:
			rt.Fixtures = append(rt.Fixtures, role)
		case f.missing != "":
			rt.MissingRoles = append(rt.MissingRoles, role)
		}
	}
	r.mu.Unlock()
	if e, ok := main.proc.ExitStatus(); ok {
		code := e.Code
		rt.ExitStatus = &code
		rt.Exit = e.String()
	}
	r.resourceReport(rep)
	for _, res := range rep.Checks {
		if res.ID == callSequence.ID && res.Status == Pass {
			p50, p99 := res.Figures["p50_ms"], res.Figures["p99_ms"]
			rt.CallP50MS, rt.CallP99MS = &p50, &p99
		}
	}
	rep.Calibration = r.calibration(rep.Checks)
	sortByCatalog(rep.Checks)
	rep.SameCause = r.sameCauses(rep.Checks, instances)
	pointHints(rep.Checks, rep.SameCause)
	for _, inst := range instances {
		o, e := inst.proc.OutputBytes()
		rt.OutputBytes += o + e
		rep.Instances = append(rep.Instances, inst.report())
	}
	rep.Duration = time.Since(r.started)
	rep.WallMS = ms(rep.Duration)
	rep.Finish(r.interrupted())
	return rep
}

// startByHand is a shell line that starts the runtime as conform did, on
// the address the reproduce lines use.
func (r *runner) startByHand() string {
	if r.contained() {
		return r.containerByHand()
	}
	var parts []string
	if r.cfg.Dir != "" {
		parts = append(parts, "cd", shellquote.Quote(r.cfg.Dir), "&&")
	}
	// The master's variables but its API, whose socket is gone when the
	// run is over.
	name := instanceName(r.cfg, 1)
	env := convention.InstanceEnv(nil, convention.Instance{Era: string(r.cfg.Profile), Service: serviceName, Name: name, Address: ReproAddress}, r.cfg.Env)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, k+"="+shellquote.Quote(v))
	}
	parts = append(parts, shellquote.Join(r.cfg.Command))
	if r.cfg.ConfigFile != "" {
		parts = append(parts, "# with", shellquote.Quote(r.cfg.ConfigFile), "at", configPath(string(r.cfg.Profile)))
	}
	return strings.Join(parts, " ")
}

// firstAnswer is the time from exec to the first call the instance
// answered OK, or 0.
func (inst *instance) firstAnswer() time.Duration {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	var first time.Time
	for _, c := range inst.calls {
		if c.kind == kindOK && !c.end.IsZero() && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	if first.IsZero() {
		return 0
	}
	return first.Sub(inst.proc.StartTime())
}
