package conformance

import (
	"fmt"
	"strings"
	"time"
)

// Stability says how a check behaved over repeated runs (Config.Repeat).
type Stability string

// The stabilities, over the runs in which a check ran to a verdict.
const (
	// StablePass: it passed every time.
	StablePass Stability = "stable pass"
	// StableFail: it failed (or warned) every time.
	StableFail Stability = "stable fail"
	// Flaky: it passed some times and failed others; a flaky MUST fails
	// the run, a flaky SHOULD or MAY warns.
	Flaky Stability = "flaky"
)

// RunSummary is one run of a repeated suite.
type RunSummary struct {
	N           int          `json:"n"`
	Started     time.Time    `json:"started"`
	WallMS      float64      `json:"duration_ms"`
	Verdict     Verdict      `json:"verdict"`
	Reason      string       `json:"reason,omitempty"`
	Counts      Counts       `json:"counts"`
	Calibration *Calibration `json:"calibration,omitempty"`
}

func summarize(rep *Report, n int) RunSummary {
	return RunSummary{N: n, Started: rep.Started, WallMS: rep.WallMS, Verdict: rep.Verdict, Reason: rep.Reason,
		Counts: rep.Counts, Calibration: rep.Calibration}
}

// aggregate folds the reports of repeated runs into one: per check, in how
// many runs it ran, failed or did not run, and what that means. A check
// that failed in any run fails (a MUST) or warns; one that passed every
// time it ran but did not run every time is not a pass: it is not run (or
// could not be run), as in one run.
func aggregate(reps []*Report, interrupted bool) *Report {
	first := reps[0]
	out := &Report{Started: first.Started, Strict: first.Strict, Repeat: len(reps), Runtime: first.Runtime}
	out.Runtime.PeakRSS, out.Runtime.PeakThreads, out.Runtime.Restarts, out.Runtime.OutputBytes = 0, 0, 0, 0
	byID := map[string][]runResult{}
	var ids []string
	for i, rep := range reps {
		n := i + 1
		out.Runs = append(out.Runs, summarize(rep, n))
		for _, in := range rep.Instances {
			in.Run = n
			out.Instances = append(out.Instances, in)
		}
		rt := rep.Runtime
		out.Runtime.PeakRSS = max(out.Runtime.PeakRSS, rt.PeakRSS)
		out.Runtime.PeakThreads = max(out.Runtime.PeakThreads, rt.PeakThreads)
		out.Runtime.Restarts += rt.Restarts
		out.Runtime.OutputBytes += rt.OutputBytes
		if out.Artifacts == "" {
			out.Artifacts = rep.Artifacts
		}
		for _, res := range rep.Checks {
			if _, ok := byID[res.ID]; !ok {
				ids = append(ids, res.ID)
			}
			byID[res.ID] = append(byID[res.ID], runResult{n, res})
		}
		out.Duration += rep.Duration
	}
	last := reps[len(reps)-1]
	out.Runtime.Exit, out.Runtime.ExitStatus = last.Runtime.Exit, last.Runtime.ExitStatus
	for _, id := range ids {
		out.Checks = append(out.Checks, aggregateCheck(byID[id], len(reps)))
	}
	out.WallMS = ms(out.Duration)
	out.Finish(interrupted)
	return out
}

// runResult is one check's result in run n.
type runResult struct {
	run int
	res Result
}

// aggregateCheck is one check's result over the runs it has results in
// (of total): the last failure's (else the last not-run's, else the last)
// result, with the counts, the stability and a message that says them.
func aggregateCheck(es []runResult, total int) Result {
	var runs, failures, notRun int
	var dur time.Duration
	pick := es[len(es)-1]
	var lastFail, lastNotRun *runResult
	for i := range es {
		e := &es[i]
		dur += e.res.Duration
		switch {
		case failed(e.res.Status):
			runs++
			failures++
			lastFail = e
		case e.res.Status == Pass:
			runs++
		default:
			notRun++
			lastNotRun = e
		}
	}
	switch {
	case lastFail != nil:
		pick = *lastFail
	case lastNotRun != nil:
		pick = *lastNotRun
	}
	res := pick.res
	res.Run = pick.run
	res.Runs, res.Failures, res.NotRun = runs, failures, notRun
	res.Duration = dur / time.Duration(len(es))
	res.DurationMS = ms(res.Duration)
	if runs > 0 {
		res.FlakeRate = float64(failures) / float64(runs)
		switch failures {
		case 0:
			res.Stability = StablePass
		case runs:
			res.Stability = StableFail
		default:
			res.Stability = Flaky
		}
	}
	notRunWords := ""
	if notRun > 0 {
		notRunWords = fmt.Sprintf("; not run in %d of %d runs", notRun, total)
	}
	switch {
	case res.Stability == Flaky:
		res.Message = fmt.Sprintf("flaky: failed %d of %d runs (rate %.2f)%s; run %d: %s", failures, runs, res.FlakeRate, notRunWords, pick.run, res.Message)
	case res.Stability == StableFail:
		res.Message = fmt.Sprintf("failed in all %d runs it ran in%s; run %d: %s", runs, notRunWords, pick.run, res.Message)
	case notRun > 0:
		res.Message = fmt.Sprintf("not run: in %d of %d runs; run %d: %s", notRun, total, pick.run, strings.TrimPrefix(res.Message, "not run: "))
	default:
		res.Message = fmt.Sprintf("passed in all %d runs; run %d: %s", runs, pick.run, res.Message)
	}
	return res
}
