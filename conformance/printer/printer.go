// Package printer writes a conformance.Report as text for people, as JSON,
// or as JUnit XML for CI systems. Printers take a finished report and an
// io.Writer; they run no checks.
package printer

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/conformance"
)

// Text writes results for people.
type Text struct {
	// Color uses ANSI colours (only on a terminal, never with NO_COLOR).
	Color bool
	// Verbose shows passing checks' messages too.
	Verbose bool
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
	}
	return p.paint("36", "SKIP")
}

// Result writes one check's line (and, for a failure, its details). It is
// used for live output as each check finishes.
func (p Text) Result(w io.Writer, r conformance.Result) {
	fmt.Fprintf(w, "%s  %-24s %-6s %7s  %s\n", p.mark(r.Status), r.ID, r.Level, fmtDur(r.Duration), oneLine(r.Message))
	if r.Status == conformance.Fail || r.Status == conformance.Warn {
		if r.Repro != "" {
			fmt.Fprintf(w, "      reproduce: %s\n", r.Repro)
		}
		if r.StderrTail != "" {
			fmt.Fprintf(w, "      runtime stderr (tail):\n")
			for _, l := range strings.Split(r.StderrTail, "\n") {
				fmt.Fprintf(w, "        | %s\n", l)
			}
		}
	}
}

// Write writes every result and the summary.
func (p Text) Write(w io.Writer, rep *conformance.Report) error {
	for _, r := range rep.Checks {
		p.Result(w, r)
	}
	return p.Summary(w, rep)
}

// Summary writes the closing lines.
func (p Text) Summary(w io.Writer, rep *conformance.Report) error {
	rt := rep.Runtime
	fmt.Fprintln(w)
	fmt.Fprintf(w, "runtime:  %s\n", strings.Join(rt.Command, " "))
	fmt.Fprintf(w, "profile:  %s (%s) on %s\n", rt.Profile, rt.Service, rt.Address)
	fmt.Fprintf(w, "start:    first call answered after %.0f ms\n", rt.ReadyMS)
	fmt.Fprintf(w, "calls:    p50 %.2f ms, p99 %.2f ms (call.sequence)\n", rt.CallP50MS, rt.CallP99MS)
	fmt.Fprintf(w, "peak:     %.1f MiB RSS, %d threads (process tree)\n", float64(rt.PeakRSS)/(1<<20), rt.PeakThreads)
	if len(rt.Reflection) > 0 {
		fmt.Fprintf(w, "services: %s (server reflection)\n", strings.Join(rt.Reflection, ", "))
	}
	if len(rt.MissingRoles) > 0 {
		fmt.Fprintf(w, "fixtures: missing %s (checks needing them were skipped)\n", strings.Join(rt.MissingRoles, ", "))
	}
	if rt.Exit != "" {
		fmt.Fprintf(w, "stopped:  %s\n", rt.Exit)
	}
	verdict := p.paint("32;1", "PASSED")
	if !rep.Passed {
		verdict = p.paint("31;1", "FAILED")
	}
	strict := ""
	if rep.Strict {
		strict = " (strict)"
	}
	_, err := fmt.Fprintf(w, "%s%s: %d passed, %d failed, %d warnings, %d skipped in %s\n",
		verdict, strict, rep.Counts.Pass, rep.Counts.Fail, rep.Counts.Warn, rep.Counts.Skip, fmtDur(rep.Duration))
	return err
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
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemErr  string          `xml:"system-err,omitempty"`
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
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// JUnit writes the report as JUnit XML: one test case per check; a failed
// MUST is a failure, a failed SHOULD/MAY is a failure only in strict mode
// (otherwise it passes with its message in system-out).
func JUnit(w io.Writer, rep *conformance.Report) error {
	s := junitSuite{
		Name:      "oe-rt conform",
		Time:      secs(rep.Duration),
		Timestamp: rep.Started.UTC().Format(time.RFC3339),
		Properties: []junitProperty{
			{"runtime", strings.Join(rep.Runtime.Command, " ")},
			{"profile", string(rep.Runtime.Profile)},
			{"ready_ms", fmt.Sprintf("%.1f", rep.Runtime.ReadyMS)},
			{"peak_rss_bytes", fmt.Sprint(rep.Runtime.PeakRSS)},
			{"peak_threads", fmt.Sprint(rep.Runtime.PeakThreads)},
			{"strict", fmt.Sprint(rep.Strict)},
		},
		SystemErr: rep.Runtime.StderrTail,
	}
	for _, r := range rep.Checks {
		c := junitCase{Name: r.ID, Classname: "conform." + string(r.Level), Time: secs(r.Duration)}
		body := r.Message
		if r.Repro != "" {
			body += "\nreproduce: " + r.Repro
		}
		if r.StderrTail != "" {
			body += "\nruntime stderr (tail):\n" + r.StderrTail
		}
		switch {
		case r.Status == conformance.Fail || (r.Status == conformance.Warn && rep.Strict):
			c.Failure = &junitMessage{Message: r.Message, Type: string(r.Level), Body: body}
			s.Failures++
		case r.Status == conformance.Skip:
			c.Skipped = &junitMessage{Message: r.Message}
			s.Skipped++
		case r.Status == conformance.Warn:
			c.SystemOut = "WARN (" + string(r.Level) + "): " + body
		default:
			c.SystemOut = r.Message
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	out := junitSuites{Name: s.Name, Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
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

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
