package conformance

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

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

// The statuses. A failed SHOULD or MAY is reported as warn.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// phase orders the checks: all checks of a phase run concurrently, phases
// one after the other; the shutdown checks run on a fresh instance beside
// the others.
type phase int

const (
	phaseStart phase = iota
	phaseCalls
	phaseLarge // the 4 MiB messages, one at a time: the memory peak they cause must not depend on scheduling
	phaseTiming
	phaseEnd
	phaseShutdown
)

// Check is one rule of the convention.
type Check struct {
	// ID is stable: never reused or renamed.
	ID string
	// Level is MUST, SHOULD or MAY.
	Level Level
	// Description says in one line what passes.
	Description string
	// Needs lists the fixture roles the check calls.
	Needs []string
	phase phase
	run   func(*T) Outcome
}

// Outcome is what a check's function returns.
type Outcome struct {
	Status  Status
	Message string
	// Repro is a command line that reproduces a failure.
	Repro string
}

func pass(format string, a ...any) Outcome {
	return Outcome{Status: Pass, Message: fmt.Sprintf(format, a...)}
}

func fail(format string, a ...any) Outcome {
	return Outcome{Status: Fail, Message: fmt.Sprintf(format, a...)}
}

func skip(format string, a ...any) Outcome {
	return Outcome{Status: Skip, Message: fmt.Sprintf(format, a...)}
}

func (o Outcome) with(repro string) Outcome { o.Repro = repro; return o }

// Catalog returns every check, in the order they are reported.
func Catalog() []*Check { return catalog }

// Lookup returns the check with the given ID.
func Lookup(id string) *Check {
	for _, c := range catalog {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Validate reports what is wrong with a catalog: duplicate or malformed
// IDs, empty descriptions, unknown levels or fixture roles, nil functions.
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
		}
		if c.Level != MUST && c.Level != SHOULD && c.Level != MAY {
			errs = append(errs, fmt.Sprintf("%s: level %q", c.ID, c.Level))
		}
		if c.run == nil {
			errs = append(errs, c.ID+": nil function")
		}
		for _, r := range c.Needs {
			if !contains(Roles, r) {
				errs = append(errs, fmt.Sprintf("%s: unknown fixture role %q", c.ID, r))
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
			s = strings.TrimSpace(s)
			if s == c.ID || s == "*" || (strings.HasSuffix(s, ".*") && strings.HasPrefix(c.ID, strings.TrimSuffix(s, "*"))) {
				out = append(out, c.ID)
				break
			}
		}
	}
	return out
}

// Result is one check's result in a report.
type Result struct {
	ID          string        `json:"id"`
	Level       Level         `json:"level"`
	Description string        `json:"description"`
	Status      Status        `json:"status"`
	Message     string        `json:"message"`
	Duration    time.Duration `json:"-"`
	DurationMS  float64       `json:"duration_ms"`
	Repro       string        `json:"reproduce,omitempty"`
	StderrTail  string        `json:"stderr_tail,omitempty"`
}

// Runtime describes the runtime the suite ran against.
type Runtime struct {
	Command      []string `json:"command"`
	Dir          string   `json:"dir,omitempty"`
	Profile      Profile  `json:"profile"`
	Service      string   `json:"service"`
	Address      string   `json:"address"`
	ExitStatus   *int     `json:"exit_status"`
	Exit         string   `json:"exit,omitempty"`
	ReadyMS      float64  `json:"ready_ms"`
	PeakRSS      int64    `json:"peak_rss_bytes"`
	PeakThreads  int      `json:"peak_threads"`
	CallP50MS    float64  `json:"call_p50_ms"`
	CallP99MS    float64  `json:"call_p99_ms"`
	Fixtures     []string `json:"fixtures"`
	StderrTail   string   `json:"stderr_tail,omitempty"`
	OutputBytes  int64    `json:"output_bytes"`
	MissingRoles []string `json:"missing_fixtures,omitempty"`
	// Reflection lists the services the runtime's server reflection
	// reports (empty when it offers none).
	Reflection []string `json:"reflection_services,omitempty"`
}

// Report is the suite's result.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"-"`
	WallMS   float64       `json:"duration_ms"`
	Strict   bool          `json:"strict"`
	Passed   bool          `json:"passed"`
	Runtime  Runtime       `json:"runtime"`
	Checks   []Result      `json:"checks"`
	Counts   Counts        `json:"counts"`
}

// Counts tallies the statuses.
type Counts struct {
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Warn int `json:"warn"`
	Skip int `json:"skip"`
}

// finish sorts the results into catalog order and decides Passed.
func (r *Report) finish() {
	order := map[string]int{}
	for i, c := range catalog {
		order[c.ID] = i
	}
	sort.SliceStable(r.Checks, func(i, j int) bool { return order[r.Checks[i].ID] < order[r.Checks[j].ID] })
	r.Passed = true
	r.Counts = Counts{}
	for _, c := range r.Checks {
		switch c.Status {
		case Pass:
			r.Counts.Pass++
		case Fail:
			r.Counts.Fail++
			r.Passed = false
		case Warn:
			r.Counts.Warn++
			if r.Strict {
				r.Passed = false
			}
		case Skip:
			r.Counts.Skip++
		}
	}
}
