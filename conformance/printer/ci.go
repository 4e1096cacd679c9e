package printer

import (
	"fmt"
	"io"
	"strings"

	"github.com/oe-rt/oe-rt/conformance"
)

// Markdown writes the report as a Markdown page for a CI job's summary
// ($GITHUB_STEP_SUMMARY): the verdict, a table of every check, and under
// it each check that did not pass with its hint. Text that came from the
// runtime is escaped, so that it cannot add markup or break the table.
func Markdown(w io.Writer, rep *conformance.Report) error {
	var b strings.Builder
	strict := ""
	if rep.Strict {
		strict = " (strict)"
	}
	fmt.Fprintf(&b, "## oe-rt conform: %s%s\n\n", strings.ToUpper(string(rep.Verdict)), strict)
	if rep.Reason != "" {
		fmt.Fprintf(&b, "%s\n\n", md(rep.Reason))
	}
	if bl := rep.Baseline; bl != nil {
		fmt.Fprintf(&b, "Against the baseline %s: **%s**: %s\n\n", md(baselineLine(bl)), strings.ToUpper(string(bl.Verdict)), md(bl.Reason))
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d warnings, %d not run in %s; runtime `%s`, profile %s, catalog version %d\n\n",
		rep.Counts.Pass, rep.Counts.Fail, rep.Counts.Warn, rep.Counts.Skip, fmtDur(rep.Duration),
		code(strings.Join(rep.Runtime.Command, " ")), rep.Runtime.Profile, rep.CatalogVersion)
	b.WriteString("| | check | level | time | result |\n|---|---|---|--:|---|\n")
	for _, r := range rep.Checks {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", statusWord(r), r.ID, r.Level, fmtDur(r.Duration), md(oneLine(r.Message)))
	}
	first := true
	for _, r := range rep.Checks {
		if r.Status == conformance.Pass || (r.Status == conformance.Skip && annotationLevel(rep, r) == "") {
			continue
		}
		if first {
			b.WriteString("\n### What did not pass\n")
			first = false
		}
		fmt.Fprintf(&b, "\n**`%s`** (%s, %s): %s\n", r.ID, r.Level, statusWord(r), md(oneLine(r.Message)))
		if r.BaselineNote != "" {
			fmt.Fprintf(&b, "\n%s\n", md(r.BaselineNote))
		}
		if r.Repro != "" {
			fmt.Fprintf(&b, "\nreproduce: `%s`\n", code(r.Repro))
		}
		if r.Hint != "" {
			b.WriteString("\nhow to fix:\n\n")
			for _, l := range strings.Split(r.Hint, "\n") {
				fmt.Fprintf(&b, "> %s\n", md(l))
			}
			fmt.Fprintf(&b, ">\n> (`oe-rt conform --explain %s`)\n", r.ID)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusWord is a result's status in the summary table.
func statusWord(r conformance.Result) string {
	switch {
	case r.Baseline == conformance.Known:
		return "known " + strings.ToUpper(string(r.Status))
	case r.Status == conformance.Pass:
		return "PASS"
	case r.Status == conformance.Fail:
		return "**FAIL**"
	case r.Status == conformance.Warn:
		return "WARN"
	case r.Status == conformance.Error:
		return "**ERROR**"
	}
	return "SKIP"
}

// md escapes text for Markdown: the punctuation that makes markup, links,
// HTML or table cells is escaped with a backslash; control characters as
// Escape shows them.
func md(s string) string {
	s = Escape(strings.ReplaceAll(s, "\n", " "))
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&#!", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// code makes text safe inside a one-backtick code span (no backtick, no
// line break, no pipe to break a table).
func code(s string) string {
	s = Escape(strings.ReplaceAll(s, "\n", " "))
	return strings.NewReplacer("`", "'", "|", "¦").Replace(s)
}

// annotationLevel says which GitHub Actions command a result gets: "error"
// for a result that fails the run (a failure, a check conform could not
// run, a warning under --strict, a MUST check that did not run), "warning"
// for a warning and a known failure of the baseline, "" for the rest.
func annotationLevel(rep *conformance.Report, r conformance.Result) string {
	switch {
	case r.Baseline == conformance.Known:
		return "warning"
	case r.Status == conformance.Fail, r.Status == conformance.Error:
		return "error"
	case r.Status == conformance.Warn && rep.Strict:
		return "error"
	case r.Status == conformance.Warn:
		return "warning"
	case r.Status == conformance.Skip && (r.Level == conformance.MUST || rep.Strict) && rep.Verdict != conformance.Passed:
		return "error"
	}
	return ""
}

// Annotations writes one GitHub Actions workflow command per check that
// did not pass (::error title=ID::cause, then how to fix it), which the
// runner shows on the pull request and the job's page. Every value is
// escaped as the runner reads it, so that a message cannot end the command
// or start another.
func Annotations(w io.Writer, rep *conformance.Report) error {
	var b strings.Builder
	for _, r := range rep.Checks {
		level := annotationLevel(rep, r)
		if level == "" {
			continue
		}
		msg := xmlSafe(r.Message)
		if r.BaselineNote != "" {
			msg += "\n" + xmlSafe(r.BaselineNote)
		}
		if r.Hint != "" {
			msg += "\nhow to fix: " + xmlSafe(r.Hint) + "\n(oe-rt conform --explain " + r.ID + ")"
		}
		fmt.Fprintf(&b, "::%s title=%s::%s\n", level, ghProperty(r.ID), ghData(msg))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ghData escapes a workflow command's message as the runner unescapes it.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command's property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
