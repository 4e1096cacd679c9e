package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Baseline is an earlier report a run is judged against, so that a team can
// gate CI on regressions before it has fixed everything: a check that
// failed (or warned) there and fails now is a known failure and does not
// fail the run; one that passed there and does not now is a regression; a
// check the catalog added after the baseline's version is new to it. A
// baseline never excuses a check that did not run or that conform could
// not run: those count as they always do.
type Baseline struct {
	// File is where the baseline was read from, for messages.
	File           string
	Started        time.Time
	OeRtVersion    string
	CatalogVersion int
	results        map[string]Status
	order          []string
}

// BaselineMark says what a baseline says of a result.
type BaselineMark string

// The marks.
const (
	// Known: it failed in the baseline and fails now; it does not count.
	Known BaselineMark = "known"
	// Regression: it passed in the baseline and does not now.
	Regression BaselineMark = "regression"
	// New: the catalog added it after the baseline's version, and it does
	// not pass.
	New BaselineMark = "new"
	// Improvement: it failed in the baseline and passes now.
	Improvement BaselineMark = "improvement"
)

// BaselineReport is the run judged against a baseline.
type BaselineReport struct {
	File           string    `json:"file"`
	Started        time.Time `json:"started"`
	OeRtVersion    string    `json:"oe_rt_version,omitempty"`
	CatalogVersion int       `json:"catalog_version"`
	// Verdict is the verdict against the baseline: the verdict rules with
	// the known failures excused, and nothing else. The exit status of
	// `oe-rt conform --baseline` follows it; Report.Verdict stays the raw
	// one.
	Verdict Verdict `json:"verdict"`
	Passed  bool    `json:"passed"`
	Reason  string  `json:"reason,omitempty"`
	// Known, Regressions, New and Improvements list check IDs by mark.
	Known        []string `json:"known,omitempty"`
	Regressions  []string `json:"regressions,omitempty"`
	New          []string `json:"new_checks,omitempty"`
	Improvements []string `json:"improvements,omitempty"`
	// Ignored lists the baseline's checks this catalog does not run, and
	// why ("x: retired in catalog version 3").
	Ignored []string `json:"ignored,omitempty"`
}

// ReadBaseline reads a JSON report of `oe-rt conform` (--format json, or
// --update-baseline) as a baseline.
func ReadBaseline(path string) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	defer f.Close()
	return ParseBaseline(f, path)
}

// ParseBaseline reads a baseline from r; name names it in messages. A
// report without catalog_version (written before reports carried one) is
// read as catalog version 1.
func ParseBaseline(r io.Reader, name string) (*Baseline, error) {
	var raw struct {
		OeRtVersion    string    `json:"oe_rt_version"`
		CatalogVersion *int      `json:"catalog_version"`
		Started        time.Time `json:"started"`
		Checks         *[]struct {
			ID     string `json:"id"`
			Status Status `json:"status"`
		} `json:"checks"`
	}
	notReport := func(why string) error {
		return fmt.Errorf("baseline %s is not a JSON report of oe-rt conform (%s): write one with --update-baseline FILE", name, why)
	}
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	if err := dec.Decode(&raw); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, notReport("not JSON: " + err.Error())
		}
		return nil, notReport(err.Error())
	}
	if raw.Checks == nil {
		return nil, notReport(`no "checks"`)
	}
	if len(*raw.Checks) == 0 {
		return nil, notReport("it holds no checks")
	}
	b := &Baseline{File: name, Started: raw.Started, OeRtVersion: raw.OeRtVersion, CatalogVersion: 1, results: map[string]Status{}}
	if raw.CatalogVersion != nil {
		if *raw.CatalogVersion < 1 {
			return nil, notReport(fmt.Sprintf("catalog_version %d", *raw.CatalogVersion))
		}
		b.CatalogVersion = *raw.CatalogVersion
	}
	for _, c := range *raw.Checks {
		switch c.Status {
		case Pass, Fail, Warn, Skip, Error:
		default:
			return nil, notReport(fmt.Sprintf("check %q has status %q", c.ID, c.Status))
		}
		if c.ID == "" {
			return nil, notReport("a check without an id")
		}
		if _, dup := b.results[c.ID]; dup {
			return nil, notReport(fmt.Sprintf("check %q appears twice", c.ID))
		}
		b.results[c.ID] = c.Status
		b.order = append(b.order, c.ID)
	}
	return b, nil
}

// failed reports whether a status means the rule was broken.
func failed(s Status) bool { return s == Fail || s == Warn }

// when names the baseline in messages: "the baseline of 2026-05-01".
func (b *Baseline) when() string {
	if b.Started.IsZero() {
		return "the baseline " + b.File
	}
	return "the baseline of " + b.Started.UTC().Format("2006-01-02")
}

// mark says what the baseline says of a result, in a mark and in words.
func (b *Baseline) mark(res Result) (BaselineMark, string) {
	prev, in := b.results[res.ID]
	switch {
	case failed(res.Status) && in && failed(prev):
		return Known, fmt.Sprintf("known: %s, since %s (not a regression)", res.ID, b.when())
	case res.Status == Pass && in && failed(prev):
		return Improvement, fmt.Sprintf("%s now passes: update the baseline (--update-baseline)", res.ID)
	case res.Status != Pass && in && prev == Pass:
		verb := "fails"
		if res.Status == Skip || res.Status == Error {
			verb = "did not run"
		}
		return Regression, fmt.Sprintf("regression: %s passed in %s and %s now", res.ID, b.when(), verb)
	case res.Status != Pass && !in && since(res.ID) > b.CatalogVersion:
		return New, fmt.Sprintf("new: catalog version %d added %s after the baseline's (%d); a new MUST that does not pass fails the run",
			since(res.ID), res.ID, b.CatalogVersion)
	}
	return "", ""
}

// applyBaseline marks every result and judges the run against b.
func (r *Report) applyBaseline(b *Baseline, interrupted bool) {
	br := &BaselineReport{File: b.File, Started: b.Started, OeRtVersion: b.OeRtVersion, CatalogVersion: b.CatalogVersion}
	for i := range r.Checks {
		res := &r.Checks[i]
		res.Baseline, res.BaselineNote = b.mark(*res)
		switch res.Baseline {
		case Known:
			br.Known = append(br.Known, res.ID)
		case Regression:
			br.Regressions = append(br.Regressions, res.ID)
		case New:
			br.New = append(br.New, res.ID)
		case Improvement:
			br.Improvements = append(br.Improvements, res.ID)
		}
	}
	for _, id := range b.order {
		switch {
		case Lookup(id) != nil:
		case Retired(id) != 0:
			br.Ignored = append(br.Ignored, fmt.Sprintf("%s: retired in catalog version %d", id, Retired(id)))
		case b.CatalogVersion > CatalogVersion:
			br.Ignored = append(br.Ignored, fmt.Sprintf("%s: unknown to this oe-rt (catalog version %d; the baseline's is %d)", id, CatalogVersion, b.CatalogVersion))
		default:
			br.Ignored = append(br.Ignored, id+": no such check in this catalog")
		}
	}
	label := func(res Result) string {
		l := flakyLabel(res)
		switch res.Baseline {
		case Regression:
			return l + " (passed in the baseline)"
		case New:
			return l + " (new since the baseline)"
		}
		return l
	}
	br.Verdict, br.Reason = judge(r.Checks, r.Strict, interrupted, func(res Result) bool { return res.Baseline == Known }, label)
	br.Passed = br.Verdict == Passed
	if br.Verdict == Passed {
		parts := []string{"no regression"}
		if n := len(br.Known); n > 0 {
			parts = append(parts, fmt.Sprintf("%d known %s: %s", n, plural(n, "failure", "failures"), strings.Join(br.Known, ", ")))
		}
		br.Reason = strings.Join(parts, "; ")
	}
	r.Baseline = br
}

// Gate is the verdict the exit status follows: the baseline's when the run
// was judged against one, the raw verdict otherwise.
func (r *Report) Gate() Verdict {
	if r.Baseline != nil {
		return r.Baseline.Verdict
	}
	return r.Verdict
}
