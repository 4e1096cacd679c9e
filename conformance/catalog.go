package conformance

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

// Level says how much a check matters.
type Level string

// The levels, as RFC 2119 spells them.
const (
	MUST   Level = "MUST"
	SHOULD Level = "SHOULD"
	MAY    Level = "MAY"
)

// Status is a check's outcome.
type Status string

// The statuses.
const (
	// Pass: the check ran and the rule held.
	Pass Status = "pass"
	// Fail: a MUST check ran and the rule was broken.
	Fail Status = "fail"
	// Warn: a SHOULD or MAY check ran and the rule was broken.
	Warn Status = "warn"
	// Skip: the check did not run (a fixture is missing, the runtime did
	// not start or ended, the run was interrupted); the message says why,
	// starting with "not run:". A skipped MUST fails the run.
	Skip Status = "skip"
	// Error: the harness itself could not run the check (it could not
	// start a process, no free port); the run exits 2.
	Error Status = "error"
)

// phase orders the checks on the main instance: phases run one after the
// other, the checks of a phase one at a time in catalog order, so that
// every call in flight belongs to exactly one check.
type phase int

const (
	phaseStart phase = iota
	phaseCalls
	phaseLarge  // the 4 MiB messages
	phaseTiming // nothing else disturbs their timing
	phaseEnd    // run.alive and the resource checks, over the whole run
	phaseShutdown
)

// Check is one rule of the convention: a small value with a stable ID, a
// level, a one-line description and a function.
type Check struct {
	// ID is stable: never reused or renamed.
	ID string
	// Level is MUST, SHOULD or MAY.
	Level Level
	// Description says in one line what passes. It may name the configured
	// limits as {memory}, {threads}, {grace}, {starttimeout}, {maxmsg};
	// Describe fills them in.
	Description string
	// Needs lists the fixture roles the check calls.
	Needs []string
	// Requires lists the shared scenarios whose results the check reads.
	Requires []Requirement
	// OptIn checks run only when Enabled says so, or when named by their
	// full ID in Config.Run.
	OptIn bool
	// Enabled, for an opt-in check, says whether the configuration turns
	// it on.
	Enabled func(*Config) bool
	// Hint says in a few lines how to fix a failure, with what usually
	// causes it in the stacks people use (one line per stack). It is shown
	// under a failure; `oe-rt conform --explain ID` shows the whole page.
	Hint string

	phase phase
	run   func(*checkCtx) Outcome
}

// Describe returns the check's description with the configured limits
// filled in.
func (c *Check) Describe(cfg *Config) string {
	if cfg == nil {
		cfg = NewConfig()
	}
	return descriptionVars(cfg).Replace(c.Description)
}

func descriptionVars(cfg *Config) *strings.Replacer {
	return strings.NewReplacer(
		"{memory}", mib(cfg.MemoryLimit),
		"{threads}", fmt.Sprint(cfg.ThreadLimit),
		"{grace}", cfg.Grace.String(),
		"{starttimeout}", cfg.StartTimeout.String(),
		"{maxmsg}", mib(int64(cfg.maxMessageSize())),
	)
}

// Outcome is what a check's function returns.
type Outcome struct {
	Status  Status
	Message string
	// Repro is a command line that reproduces a failure.
	Repro string
	// retry marks a check that could not run because its instance ended
	// for a reason that is not the check's: it runs again on a fresh one.
	retry bool
	// figures are measurements the report's summary shows.
	figures map[string]float64
	// output, when set, is the runtime output to show under the result
	// (instead of the lines its instance wrote while the check ran).
	output []OutputLine
}

func pass(format string, a ...any) Outcome {
	return Outcome{Status: Pass, Message: fmt.Sprintf(format, a...)}
}

func fail(format string, a ...any) Outcome {
	return Outcome{Status: Fail, Message: fmt.Sprintf(format, a...)}
}

// notRun is a skip: the message always starts with "not run: ".
func notRun(format string, a ...any) Outcome {
	return Outcome{Status: Skip, Message: "not run: " + fmt.Sprintf(format, a...)}
}

func harnessError(format string, a ...any) Outcome {
	return Outcome{Status: Error, Message: "conform could not run this check: " + fmt.Sprintf(format, a...)}
}

func (o Outcome) with(repro string) Outcome { o.Repro = repro; return o }

// catalog is every check, in the order they are reported. Each check's
// value sits beside its function in the file of its area: start.go,
// calls.go, timing.go, shutdown.go, resources.go, rights.go.
var catalog = []*Check{
	startListen, startTime, startScope, startAddressAliases, runAlive, runProcessGroup,
	callUnknownFunction, callMalformed, callOversize, callUnimplemented, callFields,
	echoBytes, echoJSON, echoEmpty, echoLarge, echoSweep, echoJSONIntegers,
	contextMetadata, noneEmpty, failStatus, callSequence,
	callConcurrent, callDeadline,
	shutdownSigterm, shutdownExitCode, shutdownDrain, shutdownNoOrphans,
	resourcesMemory, resourcesThreads, resourcesLimits,
	lifeCallsCheck, lifeLeaks, lifeMemory,
	rightsMasterAPI, configBaetylForms,
}

// Catalog returns every check, in the order they are reported.
func Catalog() []*Check { return catalog }

// catalogHistory is the record of the catalog's versions: entry v-1 lists
// the checks version v added and retired. It only grows: a released
// version never changes, a retired ID is never reused, and a rule that
// changes so that a runtime passing the old one could fail the new one is a
// new check with a new ID (the old ID is retired). A report records the
// version it was made with (catalog_version), so that a baseline from an
// older catalog is read correctly: a check added after it is new to it.
var catalogHistory = []catalogRelease{
	{ // 1: the catalog when reports began to carry a version; a report
		// without catalog_version is read as version 1.
		added: []string{
			"start.listen", "start.time", "start.scope", "run.alive",
			"call.unknown-function", "call.malformed", "call.oversize", "call.unimplemented", "call.fields",
			"echo.bytes", "echo.json", "echo.empty", "echo.large",
			"context.metadata", "none.empty", "fail.status", "call.sequence",
			"call.concurrent", "call.deadline",
			"shutdown.sigterm", "shutdown.exit-code", "shutdown.drain", "shutdown.no-orphans",
			"resources.memory", "resources.threads", "resources.limits",
		},
	},
	{ // 2: the checks of the master's start and rights (issue 9).
		added: []string{"start.address-aliases", "rights.master-api"},
	},
	{ // 3: the long life (1,000 calls on one instance, what they leave
		// behind), and the master's process group and configuration forms.
		added: []string{"life.calls", "life.leaks", "life.memory", "run.process-group", "config.baetyl-forms"},
	},
	{ // 4: the echo's input space, swept from a seed (issue 21).
		added: []string{"echo.sweep", "echo.json-integers"},
	},
}

type catalogRelease struct{ added, retired []string }

// CatalogVersion is the version of this catalog: it grows by one with
// every change that adds or retires a check.
var CatalogVersion = len(catalogHistory)

// Since returns the catalog version that added the check (0: none).
func (c *Check) Since() int { return since(c.ID) }

func since(id string) int {
	for i, rel := range catalogHistory {
		if contains(rel.added, id) {
			return i + 1
		}
	}
	return 0
}

// Retired returns the catalog version that retired a check ID (0: it was
// not retired).
func Retired(id string) int {
	for i, rel := range catalogHistory {
		if contains(rel.retired, id) {
			return i + 1
		}
	}
	return 0
}

// Lookup returns the check with the given ID, or nil.
func Lookup(id string) *Check {
	for _, c := range catalog {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Validate reports what is wrong with a catalog: duplicate or malformed
// IDs, empty descriptions or unknown placeholders in them, unknown levels
// or fixture roles, nil functions, opt-in checks with no switch, scenarios
// with no function, a check with no hint or no explain page (or a page
// without its sections), and a check that is not in the catalog's history
// (a new check needs a new catalog version) or whose ID was retired.
func Validate(checks []*Check) error {
	seen := map[string]bool{}
	var errs []string
	for _, c := range checks {
		switch {
		case c.ID == "" || strings.ToLower(c.ID) != c.ID || !strings.Contains(c.ID, ".") || strings.ContainsAny(c.ID, " *,"):
			errs = append(errs, fmt.Sprintf("bad ID %q", c.ID))
		case seen[c.ID]:
			errs = append(errs, fmt.Sprintf("duplicate ID %q", c.ID))
		}
		seen[c.ID] = true
		if strings.TrimSpace(c.Description) == "" {
			errs = append(errs, c.ID+": empty description")
		} else if p := placeholder.FindString(c.Describe(nil)); p != "" {
			errs = append(errs, fmt.Sprintf("%s: unknown placeholder %s in its description", c.ID, p))
		}
		if c.Level != MUST && c.Level != SHOULD && c.Level != MAY {
			errs = append(errs, fmt.Sprintf("%s: level %q", c.ID, c.Level))
		}
		if c.run == nil {
			errs = append(errs, c.ID+": nil function")
		}
		if c.OptIn && c.Enabled == nil {
			errs = append(errs, c.ID+": opt-in without Enabled")
		}
		for _, r := range c.Needs {
			if !contains(Roles, r) {
				errs = append(errs, fmt.Sprintf("%s: unknown fixture role %q", c.ID, r))
			}
		}
		for _, s := range c.Requires {
			if !validRequirement(s) {
				errs = append(errs, c.ID+": a required scenario has no name or function")
			}
		}
		if strings.TrimSpace(c.Hint) == "" {
			errs = append(errs, c.ID+": no hint (how to fix a failure)")
		}
		if err := validPage(c.ID); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", c.ID, err))
		}
		switch {
		case Retired(c.ID) != 0:
			errs = append(errs, fmt.Sprintf("%s: the ID was retired in catalog version %d and is never reused", c.ID, Retired(c.ID)))
		case c.Since() == 0:
			errs = append(errs, fmt.Sprintf("%s: not in the catalog's history: a new check goes into a new catalog version (catalogHistory)", c.ID))
		}
	}
	added := map[string]int{}
	for _, rel := range catalogHistory {
		for _, id := range rel.added {
			added[id]++
			if added[id] == 2 {
				errs = append(errs, fmt.Sprintf("%s: added twice in the catalog's history (an ID is never reused)", id))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid catalog: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Select returns the IDs of the checks matching any selector: an ID, or a
// prefix followed by ".*" (start.*), or "*".
func Select(selectors []string) []string {
	var out []string
	for _, c := range catalog {
		for _, s := range selectors {
			if matches(strings.TrimSpace(s), c.ID) {
				out = append(out, c.ID)
				break
			}
		}
	}
	return out
}

func matches(selector, id string) bool {
	return selector == id || selector == "*" ||
		(strings.HasSuffix(selector, ".*") && strings.HasPrefix(id, strings.TrimSuffix(selector, "*")))
}

// Selected returns the IDs of the checks the configuration runs, in
// catalog order.
func (cfg *Config) Selected() []string {
	var out []string
	for _, c := range selection(cfg) {
		out = append(out, c.ID)
	}
	return out
}

// selection returns the checks to run, in catalog order: every check
// matched by Run (all when empty) and not by Skip; an opt-in check only
// when its switch is on or Run names it by its full ID.
func selection(cfg *Config) []*Check {
	var out []*Check
	for _, c := range catalog {
		in := len(cfg.Run) == 0
		named := false
		for _, s := range cfg.Run {
			s = strings.TrimSpace(s)
			in = in || matches(s, c.ID)
			named = named || s == c.ID
		}
		for _, s := range cfg.Skip {
			if matches(strings.TrimSpace(s), c.ID) {
				in = false
			}
		}
		if c.OptIn && !c.Enabled(cfg) && !named {
			in = false
		}
		if in {
			out = append(out, c)
		}
	}
	return out
}

// Scenario is work that several checks share and read back, as
// go/analysis analyzers share results through Requires and ResultOf. The
// runner runs each required scenario once; a check reads its result, of
// type T, with resultOf(c, s): no type assertion in the check, and a check
// cannot read a result of the wrong type.
type Scenario[T any] struct {
	// Name says what the scenario does, for messages ("the shutdown scenario").
	Name string
	// late scenarios start once the main instance's start checks are
	// done, run beside its call checks, and are over before its 4 MiB and
	// timing checks begin, so that their load disturbs neither the start
	// nor the timing judged, and no two 4 MiB streams share conform's
	// memory; the others start with the suite and run beside it.
	late bool
	// after, when that scenario runs too, is waited for before this one
	// starts (it must come first in the catalog): instances that would
	// slow each other down start one group after the other.
	after Requirement
	run   func(*runner) T
}

// Requirement is a scenario a check requires, whatever its result's type
// (a *Scenario[T]).
type Requirement interface {
	// scenarioName is the scenario's Name.
	scenarioName() string
	isLate() bool
	// waitsFor is the scenario this one starts after, or nil.
	waitsFor() Requirement
	// start runs the scenario and returns its result.
	start(r *runner) any
	valid() bool
}

func (s *Scenario[T]) scenarioName() string  { return s.Name }
func (s *Scenario[T]) isLate() bool          { return s.late }
func (s *Scenario[T]) waitsFor() Requirement { return s.after }
func (s *Scenario[T]) start(r *runner) any {
	if s.run == nil {
		return nil
	}
	return s.run(r)
}

// validRequirement reports whether a requirement is a scenario with a
// name and a function.
func validRequirement(s Requirement) bool { return s != nil && s.valid() }

func (s *Scenario[T]) valid() bool { return s != nil && s.Name != "" && s.run != nil }

// scenarioResult is resultOf for the runner.
func scenarioResult[T any](r *runner, s *Scenario[T]) T {
	v, _ := r.resultOf(s).(T)
	return v
}

// checkTimeouts: how long a check's calls may take before conform gives up.
const (
	callTimeout  = 3 * time.Second  // an ordinary call of a fixture
	largeTimeout = 15 * time.Second // a call carrying megabytes
)
