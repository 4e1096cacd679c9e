// Package printer writes a conformance.Report as text for people, as JSON,
// or as JUnit XML for CI systems. Printers take a finished report and an
// io.Writer; they run no checks. Each prints only what the report holds: a
// figure that was not measured is not printed, and the verdict is the
// report's (PASSED, FAILED, INTERRUPTED or ERROR) in every format.
package printer

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oe-rt/oe-rt/conformance"
)

// Text writes results for people.
type Text struct {
	// Color uses ANSI colours (only on a terminal, never with NO_COLOR).
	Color bool
	// Verbose shows passing checks' messages too.
	Verbose bool
	// Width, when set, is the terminal's width: a result's message longer
	// than the line wraps onto lines of their own, indented under the
	// message, at spaces (a word longer than a line stays whole). 0
	// writes every message on one line (files, pipes, CI logs: one line
	// per result, for grep). Either way a message is never cut short.
	Width int
}

func (p Text) paint(code, s string) string {
	if !p.Color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p Text) mark(s conformance.Status) string {
	switch s {
	case conformance.Pass:
		return p.paint("32", "PASS")
	case conformance.Fail:
		return p.paint("31;1", "FAIL")
	case conformance.Warn:
		return p.paint("33", "WARN")
	case conformance.Error:
		return p.paint("35;1", "ERR ")
	}
	return p.paint("36", "SKIP")
}

// Result writes one check's line (and, for a result that did not pass,
// its details). It is used for live output as each check finishes.
func (p Text) Result(w io.Writer, r conformance.Result) {
	head := fmt.Sprintf("%-4s  %-24s %-6s %7s  ", "", r.ID, r.Level, fmtDur(r.Duration))
	fmt.Fprintf(w, "%s%s%s\n", p.mark(r.Status), head[4:], p.wrap(oneLine(r.Message), utf8.RuneCountInString(head)))
	if r.BaselineNote != "" {
		fmt.Fprintf(w, "      %s\n", Escape(r.BaselineNote))
	}
	if r.Status == conformance.Pass {
		return
	}
	if r.Repro != "" && (r.Status == conformance.Fail || r.Status == conformance.Warn) {
		fmt.Fprintf(w, "      reproduce: %s\n", Escape(r.Repro))
	}
	if len(r.Output) > 0 {
		fmt.Fprintf(w, "      what the runtime wrote meanwhile (last %d lines):\n", len(r.Output))
		for _, l := range r.Output {
			fmt.Fprintf(w, "        #%d %s | %s\n", l.Instance, l.Stream, Escape(l.Text))
		}
	}
	if r.Hint != "" {
		for i, l := range strings.Split(r.Hint, "\n") {
			lead := "      how to fix: "
			if i > 0 {
				lead = "                  "
			}
			fmt.Fprintf(w, "%s%s\n", lead, Escape(l))
		}
		fmt.Fprintf(w, "                  (oe-rt conform --explain %s)\n", r.ID)
	}
}

// Write writes every result and the summary.
func (p Text) Write(w io.Writer, rep *conformance.Report) error {
	for _, r := range rep.Checks {
		p.Result(w, r)
	}
	return p.Summary(w, rep)
}

// Summary writes the closing lines: only figures that were measured.
func (p Text) Summary(w io.Writer, rep *conformance.Report) error {
	fmt.Fprintln(w)
	p.runtimeLines(w, rep)
	p.endLines(w, rep)
	p.verdictLine(w, rep)
	b := rep.Baseline
	if b == nil {
		return nil
	}
	return p.baselineLines(w, b)
}

// runtimeLines are what the summary says of the runtime: its command,
// profile, image, start, calls, memory, services and fixtures, and the
// machine's calibration.
func (p Text) runtimeLines(w io.Writer, rep *conformance.Report) {
	rt := rep.Runtime
	fmt.Fprintf(w, "runtime:  %s\n", Escape(strings.Join(rt.Command, " ")))
	fmt.Fprintf(w, "profile:  %s (%s)\n", rt.Profile, rt.Service)
	if rep.Seed != 0 {
		fmt.Fprintf(w, "seed:     %d (--seed %d sends the same sweep again)\n", rep.Seed, rep.Seed)
	}
	if im := rt.Image; im != nil {
		ep := "none"
		if len(im.Entrypoint) > 0 {
			ep = strings.Join(im.Entrypoint, " ")
		}
		fmt.Fprintf(w, "image:    %s %s, %.1f MiB, entrypoint %s, user %s (a container per instance, on network %s)\n",
			Escape(im.Name), Escape(im.ID), float64(im.Size)/(1<<20), Escape(ep), Escape(im.User), Escape(im.Network))
	}
	if rt.ReadyMS != nil {
		line := fmt.Sprintf("start:    connection accepted %.0f ms after exec", *rt.ReadyMS)
		if rt.FirstCallMS != nil {
			line += fmt.Sprintf(", first call answered after %.0f ms", *rt.FirstCallMS)
		}
		if rt.CreateToAnswerMS != nil {
			line += fmt.Sprintf(" (%.0f ms after the container's create)", *rt.CreateToAnswerMS)
		}
		fmt.Fprintln(w, line)
	}
	if line := calibrationLine(rep.Calibration); line != "" {
		fmt.Fprintf(w, "machine:  %s\n", Escape(line))
	}
	if rt.CallP50MS != nil && rt.CallP99MS != nil {
		fmt.Fprintf(w, "calls:    p50 %.2f ms, p99 %.2f ms (call.sequence)\n", *rt.CallP50MS, *rt.CallP99MS)
	}
	if rt.PeakRSS > 0 {
		fmt.Fprintf(w, "peak:     %.1f MiB RSS, %d threads (process tree)\n", float64(rt.PeakRSS)/(1<<20), rt.PeakThreads)
	}
	if l := resourcesLine(rep.Resources); l != "" {
		fmt.Fprintf(w, "%s\n", Escape(l))
	}
	if len(rt.Reflection) > 0 {
		fmt.Fprintf(w, "services: %s (server reflection)\n", strings.Join(rt.Reflection, ", "))
	}
	if len(rt.Fixtures) > 0 || len(rt.MissingRoles) > 0 {
		var parts []string
		if len(rt.Fixtures) > 0 {
			parts = append(parts, "served "+strings.Join(rt.Fixtures, ", "))
		}
		if len(rt.MissingRoles) > 0 {
			parts = append(parts, "missing "+strings.Join(rt.MissingRoles, ", "))
		}
		fmt.Fprintf(w, "fixtures: %s\n", strings.Join(parts, "; "))
	}
}

// endLines are how the instances ended, the failures of one cause, and the
// verdicts of each run.
func (p Text) endLines(w io.Writer, rep *conformance.Report) {
	rt := rep.Runtime
	if notable(rep) {
		for _, in := range rep.Instances {
			fmt.Fprintf(w, "instance: %s\n", Escape(instanceLine(in)))
		}
	} else if rt.Exit != "" {
		fmt.Fprintf(w, "stopped:  %s\n", rt.Exit)
	}
	for _, c := range rep.SameCause {
		fmt.Fprintf(w, "cause:    %s\n", p.wrap(oneLine(c.String()), 10))
	}
	if hasRepro(rep) {
		fmt.Fprintf(w, "start it by hand for the reproduce lines:\n  %s\n", Escape(rt.StartByHand))
	}
	for _, run := range rep.Runs {
		line := fmt.Sprintf("run %d:    %s in %s", run.N, strings.ToUpper(string(run.Verdict)), fmtDur(time.Duration(run.WallMS*float64(time.Millisecond))))
		if run.Reason != "" {
			line += ": " + run.Reason
		}
		fmt.Fprintln(w, Escape(line))
	}
}

// verdictLine is the verdict with its counts and its reason.
func (p Text) verdictLine(w io.Writer, rep *conformance.Report) {
	strict := ""
	if rep.Strict {
		strict = " (strict)"
	}
	counts := fmt.Sprintf("%d passed, %d failed, %d warnings, %d not run", rep.Counts.Pass, rep.Counts.Fail, rep.Counts.Warn, rep.Counts.Skip)
	if rep.Counts.Error > 0 {
		counts += fmt.Sprintf(", %d could not be run by conform", rep.Counts.Error)
	}
	if rep.Repeat > 1 {
		counts += fmt.Sprintf(" over %d runs", rep.Repeat)
	}
	raw := ""
	if rep.Baseline != nil {
		raw = " (the raw verdict; against the baseline below)"
	}
	fmt.Fprintf(w, "%s%s: %s in %s%s\n", p.verdict(rep.Verdict), strict, counts, fmtDur(rep.Duration), raw)
	if rep.Reason != "" {
		fmt.Fprintf(w, "  %s\n", Escape(rep.Reason))
	}
}

// baselineLines are the verdict against the baseline and how it differs.
func (p Text) baselineLines(w io.Writer, b *conformance.BaselineReport) error {
	fmt.Fprintf(w, "baseline: %s\n", Escape(baselineLine(b)))
	for _, l := range []struct {
		what string
		ids  []string
	}{{"known failures", b.Known}, {"regressions", b.Regressions}, {"new checks that do not pass", b.New}, {"now passing (update the baseline)", b.Improvements}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", l.what, strings.Join(l.ids, ", "))
		}
	}
	for _, ig := range b.Ignored {
		fmt.Fprintf(w, "  ignored: %s\n", Escape(ig))
	}
	// Not a line that starts with a verdict word: the raw verdict above
	// keeps that place.
	_, err := fmt.Fprintf(w, "against the baseline: %s: %s\n", p.verdict(b.Verdict), Escape(b.Reason))
	return err
}

// verdict renders a verdict word, in colour when asked.
func (p Text) verdict(v conformance.Verdict) string {
	switch v {
	case conformance.Passed:
		return p.paint("32;1", "PASSED")
	case conformance.Errored:
		return p.paint("35;1", "ERROR")
	}
	return p.paint("31;1", strings.ToUpper(string(v)))
}

// baselineLine names a baseline: its file, when it ran, with which oe-rt
// and catalog.
func baselineLine(b *conformance.BaselineReport) string {
	s := b.File
	var of []string
	if !b.Started.IsZero() {
		of = append(of, "the run of "+b.Started.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if b.OeRtVersion != "" {
		of = append(of, "oe-rt "+b.OeRtVersion)
	}
	of = append(of, fmt.Sprintf("catalog version %d", b.CatalogVersion))
	return s + " (" + strings.Join(of, ", ") + ")"
}

// calibrationLine says what was observed of the machine: the reference's
// figures and the runtime's waits for a CPU, only those measured.
func calibrationLine(c *conformance.Calibration) string {
	if c == nil {
		return ""
	}
	var ref, wait []string
	if c.ReferenceReadyMS != nil {
		ref = append(ref, fmt.Sprintf("started in %.0f ms", *c.ReferenceReadyMS))
	}
	if c.ReferenceConcurrentMS != nil {
		ref = append(ref, fmt.Sprintf("its 4 parallel 500 ms sleeps took %.0f ms", *c.ReferenceConcurrentMS))
	}
	if c.ReferenceNextCallMS != nil {
		ref = append(ref, fmt.Sprintf("its call after a deadline %.0f ms", *c.ReferenceNextCallMS))
	}
	for _, w := range []struct {
		v    *float64
		when string
	}{{c.StartCPUWaitMS, "starting"}, {c.ConcurrentCPUWaitMS, "in call.concurrent"}, {c.DeadlineCPUWaitMS, "in call.deadline"}} {
		if w.v != nil {
			wait = append(wait, fmt.Sprintf("%.0f ms %s", *w.v, w.when))
		}
	}
	var parts []string
	switch {
	case len(ref) > 0:
		parts = append(parts, "the reference (a bare gRPC server) "+strings.Join(ref, ", "))
	case c.Error != "":
		parts = append(parts, "no reference figures ("+c.Error+")")
	}
	if len(wait) > 0 {
		parts = append(parts, "the runtime waited for a CPU "+strings.Join(wait, ", "))
	}
	return strings.Join(parts, "; ")
}

// instanceLine describes an instance's life in one line.
func instanceLine(in conformance.InstanceReport) string {
	s := fmt.Sprintf("#%d %s, pid %d", in.N, in.Role, in.Pid)
	switch {
	case in.ReadyMS != nil:
		s += fmt.Sprintf(", ready after %.0f ms", *in.ReadyMS)
	case in.NotReady != "":
		s += ", not ready: " + in.NotReady
	}
	if in.Exit != "" {
		how := "stopped by conform (" + in.StoppedBy + ")"
		if in.ByItself {
			how = "ended by itself"
		}
		s += fmt.Sprintf("; %s: %s", how, in.Exit)
		if len(in.InFlight) > 0 {
			var calls []string
			for _, c := range in.InFlight {
				calls = append(calls, c.Owner+" → "+c.Function)
			}
			s += " with in flight: " + strings.Join(calls, ", ")
		}
	}
	if len(in.Checks) > 0 {
		s += "; checks: " + strings.Join(in.Checks, ", ")
	}
	return s
}

// notable: the instances' lives are worth a line each when one ended by
// itself, did not become ready, or was replaced.
func notable(rep *conformance.Report) bool {
	if rep.Runtime.Restarts > 0 {
		return true
	}
	for _, in := range rep.Instances {
		if in.ByItself || in.NotReady != "" || len(in.InFlight) > 0 {
			return true
		}
	}
	return false
}

func hasRepro(rep *conformance.Report) bool {
	for _, r := range rep.Checks {
		if r.Repro != "" && r.Status != conformance.Pass {
			return true
		}
	}
	return false
}

// JSON writes the report as one JSON object.
func JSON(w io.Writer, rep *conformance.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// JUnit XML, as Jenkins, GitLab and GitHub Actions read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// JUnit marks: a known failure of a baseline is a skipped test case whose
// message says so; the suite's properties carry both verdicts.

// JUnit writes the report as JUnit XML: one test case per check. A failed
// MUST is a failure, and so is a failed SHOULD/MAY in strict mode
// (otherwise its message is in system-out); a check that did not run is a
// failure when it counts for the verdict (a MUST, or any check in strict
// mode) and skipped otherwise; a check conform could not run is an error;
// in an interrupted run every check that did not run is an error.
func JUnit(w io.Writer, rep *conformance.Report) error {
	s := junitSuite{
		Name:       "oe-rt conform",
		Time:       secs(rep.Duration),
		Timestamp:  rep.Started.UTC().Format(time.RFC3339),
		Properties: junitProperties(rep),
		SystemOut:  xmlSafe(junitSystemOut(rep)),
	}
	for _, r := range rep.Checks {
		c, kind := junitCaseOf(rep, r)
		switch kind {
		case "failure":
			s.Failures++
		case "error":
			s.Errors++
		case "skipped":
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	out := junitSuites{Name: s.Name, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitProperties are the suite's properties: the verdict, the runtime,
// and the run's figures.
func junitProperties(rep *conformance.Report) []junitProperty {
	ps := []junitProperty{
		{"verdict", string(rep.Verdict)},
		{"runtime", strings.Join(rep.Runtime.Command, " ")},
		{"profile", string(rep.Runtime.Profile)},
		{"strict", fmt.Sprint(rep.Strict)},
		{"restarts", fmt.Sprint(rep.Runtime.Restarts)},
		{"catalog_version", fmt.Sprint(rep.CatalogVersion)},
	}
	if rep.OeRtVersion != "" {
		ps = append(ps, junitProperty{"oe_rt_version", rep.OeRtVersion})
	}
	if rep.Repeat > 1 {
		ps = append(ps, junitProperty{"repeat", fmt.Sprint(rep.Repeat)})
	}
	if rep.Seed != 0 {
		ps = append(ps, junitProperty{"seed", fmt.Sprint(rep.Seed)})
	}
	if b := rep.Baseline; b != nil {
		ps = append(ps,
			junitProperty{"baseline_verdict", string(b.Verdict)},
			junitProperty{"baseline", baselineLine(b)})
	}
	if rep.Runtime.ReadyMS != nil {
		ps = append(ps, junitProperty{"ready_ms", fmt.Sprintf("%.1f", *rep.Runtime.ReadyMS)})
	}
	if line := calibrationLine(rep.Calibration); line != "" {
		ps = append(ps, junitProperty{"machine", line})
	}
	if rep.Runtime.PeakRSS > 0 {
		ps = append(ps,
			junitProperty{"peak_rss_bytes", fmt.Sprint(rep.Runtime.PeakRSS)},
			junitProperty{"peak_threads", fmt.Sprint(rep.Runtime.PeakThreads)})
	}
	if rep.Resources != nil {
		ps = append(ps, junitProperty{"resources", rep.Resources.Mode})
	}
	return ps
}

// junitSystemOut is the suite's system-out: the verdict and what explains
// it (baseline, runs, instances, how to start the runtime by hand).
func junitSystemOut(rep *conformance.Report) string {
	var out strings.Builder
	fmt.Fprintf(&out, "%s", strings.ToUpper(string(rep.Verdict)))
	if rep.Reason != "" {
		fmt.Fprintf(&out, ": %s", rep.Reason)
	}
	out.WriteString("\n")
	if l := resourcesLine(rep.Resources); l != "" {
		fmt.Fprintf(&out, "%s\n", l)
	}
	if b := rep.Baseline; b != nil {
		fmt.Fprintf(&out, "the verdict above is the raw one; against the baseline %s: %s: %s\n", baselineLine(b), strings.ToUpper(string(b.Verdict)), b.Reason)
	}
	for _, run := range rep.Runs {
		fmt.Fprintf(&out, "run %d: %s %s\n", run.N, strings.ToUpper(string(run.Verdict)), run.Reason)
	}
	for _, in := range rep.Instances {
		fmt.Fprintf(&out, "instance %s\n", instanceLine(in))
	}
	if rep.Runtime.StartByHand != "" && hasRepro(rep) {
		fmt.Fprintf(&out, "start it by hand for the reproduce lines: %s\n", rep.Runtime.StartByHand)
	}
	return out.String()
}

// junitCaseOf is a check's test case, and what it counts as: "failure",
// "error", "skipped" or "" (a pass, or a warning outside --strict).
func junitCaseOf(rep *conformance.Report, r conformance.Result) (junitCase, string) {
	c := junitCase{Name: r.ID, Classname: "conform." + string(r.Level), Time: secs(r.Duration)}
	body := r.Message
	if r.Repro != "" {
		body += "\nreproduce: " + r.Repro
	}
	for i, l := range r.Output {
		if i == 0 {
			body += "\nwhat the runtime wrote meanwhile:"
		}
		body += fmt.Sprintf("\n#%d %s | %s", l.Instance, l.Stream, l.Text)
	}
	if r.Hint != "" {
		body += "\nhow to fix (oe-rt conform --explain " + r.ID + "):\n" + r.Hint
	}
	msg, body := xmlSafe(r.Message), xmlSafe(body)
	counts := r.Level == conformance.MUST || rep.Strict
	interrupted := rep.Verdict == conformance.Interrupted
	switch {
	case r.Baseline == conformance.Known:
		// Known failures stay visible but do not turn CI red.
		c.Skipped = &junitMessage{Message: xmlSafe(r.BaselineNote), Body: body}
		return c, "skipped"
	case r.Status == conformance.Fail || (r.Status == conformance.Warn && rep.Strict):
		c.Failure = &junitMessage{Message: msg, Type: string(r.Level), Body: body}
		return c, "failure"
	case r.Status == conformance.Error || (r.Status == conformance.Skip && interrupted):
		c.Error = &junitMessage{Message: msg, Type: "not-run", Body: body}
		return c, "error"
	case r.Status == conformance.Skip && counts:
		c.Failure = &junitMessage{Message: msg, Type: "not-run", Body: body}
		return c, "failure"
	case r.Status == conformance.Skip:
		c.Skipped = &junitMessage{Message: msg}
		return c, "skipped"
	case r.Status == conformance.Warn:
		c.SystemOut = "WARN (" + string(r.Level) + "): " + body
	default:
		c.SystemOut = msg
	}
	return c, ""
}

// Escape makes text safe to print on a terminal: control characters
// (escape sequences, carriage returns, backspaces) are shown as \xNN, and
// invalid UTF-8 as \xNN per byte, so that a runtime's output cannot clear
// the screen or forge a line.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// xmlSafe drops what XML 1.0 cannot carry, escaping control characters as
// Escape does.
func xmlSafe(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Escape(l)
	}
	return strings.Join(lines, "\n")
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
}

// oneLine puts a message on one line, whole: a cause is never cut short
// (the terminal wraps it). Only what no cause needs — a message over
// 4 KiB, which a runtime's own status text can make — is cut, and says by
// how much.
func oneLine(s string) string {
	s = Escape(strings.ReplaceAll(s, "\n", " "))
	if len(s) > maxMessage {
		s = fmt.Sprintf("%s… (%d bytes more; the JSON report has the whole message)", s[:maxMessage], len(s)-maxMessage)
	}
	return s
}

// wrap breaks s at spaces into lines of at most p.Width columns, the first
// of which starts at column at, the others indented to it (or by 6 columns
// when that leaves less than 40 for the text); nothing of s is dropped.
func (p Text) wrap(s string, at int) string {
	if p.Width <= 0 || at+utf8.RuneCountInString(s) <= p.Width {
		return s
	}
	indent := at
	if p.Width-indent < 40 {
		indent = 6
	}
	var b strings.Builder
	col := at
	for i, word := range strings.Split(s, " ") {
		n := utf8.RuneCountInString(word)
		switch {
		case i == 0:
		case col+1+n > p.Width && col > indent:
			b.WriteString("\n" + strings.Repeat(" ", indent))
			col = indent
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += n
	}
	return b.String()
}

// maxMessage bounds a message line of the text report.
const maxMessage = 4 << 10

// resourcesLine says in one line how memory and threads were judged —
// measured or enforced — with the figures the resource checks read.
func resourcesLine(r *conformance.Resources) string {
	if r == nil {
		return ""
	}
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	limit := mib(r.MemoryLimit)
	if r.MemoryLimit%(1<<20) == 0 {
		limit = fmt.Sprintf("%d MiB", r.MemoryLimit>>20)
	}
	if r.Mode == "enforced" {
		s := fmt.Sprintf("limits:   enforced by %s, a cgroup per instance (%s %s, pids.max %d)", r.Cgroup, r.MemoryFile, limit, r.ThreadLimit)
		if r.MemoryInstance > 0 {
			s += fmt.Sprintf(": cgroup peak %s (instance #%d)", mib(r.Memory), r.MemoryInstance)
		}
		if r.Load != nil {
			s += fmt.Sprintf(", the function manager's load on #%d: %d calls one at a time, payloads up to %s", r.Load.Instance, r.Load.Calls, mib(r.Load.LargestBytes))
		}
		if r.TasksPeak > 0 {
			s += fmt.Sprintf("; at most %d tasks", r.TasksPeak)
		}
		return s
	}
	s := "memory:   measured, not enforced"
	if r.MemoryInstance > 0 {
		s += fmt.Sprintf(": peak unreclaimable (RssAnon + RssShmem) %s of %s (instance #%d), peak %d threads of %d", mib(r.Memory), limit, r.MemoryInstance, r.Threads, r.ThreadLimit)
		if r.FewSamples {
			s += fmt.Sprintf(", from only %d samples", r.Samples)
		} else {
			s += fmt.Sprintf(" (%d samples)", r.Samples)
		}
	}
	if r.NotEnforced != "" {
		s += "; limits asked for but " + strings.TrimPrefix(r.NotEnforced, "this machine ")
	}
	return s
}
