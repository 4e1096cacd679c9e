package cli

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/internal/launch"
)

func assertNoChildren(t *testing.T) {
	t.Helper()
	for _, p := range launch.Tree(os.Getpid())[1:] {
		if p.State != 'Z' {
			t.Errorf("process %d outlived the command", p.Pid)
		}
	}
}

func TestConformReferenceRuntime(t *testing.T) {
	dir := t.TempDir()
	junit := filepath.Join(dir, "report.xml")
	code, out, errOut := runMain("conform", "--strict", "--junit", junit, oeRT, "--", "serve")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	ran := len(conformance.Catalog()) - 1 // all but the opt-in resources.limits
	assert.Contains(t, out, fmt.Sprintf("PASSED (strict): %d passed, 0 failed", ran))
	assert.Contains(t, out, "machine:  the reference (a bare gRPC server) started in", "calibrated against oe-rt's own reference")
	for _, c := range conformance.Catalog() {
		if c.ID != "resources.limits" {
			assert.Contains(t, out, c.ID)
		}
	}
	b, err := os.ReadFile(junit)
	require.NoError(t, err)
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(b, &suites))
	assert.Equal(t, ran, suites.Tests)
	assert.Equal(t, 0, suites.Failures)
	assert.Len(t, suites.Suites[0].Cases, ran)
	assertNoChildren(t)
}

func TestConformJSONAndFailure(t *testing.T) {
	// The reference runtime with the sleep fixture mapped to a function it
	// does not serve: the checks needing it are skipped; with a runtime that
	// cannot start, start.listen fails and the run exits 1.
	code, out, _ := runMain("conform", "--format", "json", "--run", "call.concurrent,echo.json", "--function", "sleep=nope", oeRT, "--", "serve")
	assert.Equal(t, 0, code)
	var rep conformance.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Checks, 2)
	st := map[string]conformance.Status{}
	for _, c := range rep.Checks {
		st[c.ID] = c.Status
	}
	assert.Equal(t, conformance.Skip, st["call.concurrent"])
	assert.Equal(t, conformance.Pass, st["echo.json"])
	assert.Contains(t, rep.Runtime.MissingRoles, "sleep")

	code, out, _ = runMain("conform", "--start-timeout", "1s", "--run", "start.listen", "/bin/sleep", "--", "30")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "FAIL  start.listen")
	assertNoChildren(t)
}

func TestConformUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"conform", "--format", "xml"}, "--format"},
		{[]string{"conform", "--profile", "x"}, "profile"},
		{[]string{"conform", "--run", "nope.*"}, "no check matches"},
		{[]string{"conform", "--function", "echo"}, "ROLE=NAME"},
		{[]string{"conform", "--function", "bogus=x"}, "role"},
		{[]string{"conform", "--env", "NOEQUALS"}, "K=V"},
		{[]string{"conform", "--bogus"}, "unknown flag"},
		{[]string{"conform", "./rt", "-c", "x"}, "go after --"},
		{[]string{"conform", "./rt", "x"}, "after --"},
		{[]string{"conform", "/no/such/runtime"}, "no such file"},
		{[]string{"conform", "--proto", "/no/such.proto"}, "no such file"},
		{[]string{"conform", "--grace", "0s"}, "positive"},
		{[]string{"conform", "--config", "/no/such/service.yml"}, "no such file"},
		{[]string{"conform", "--config", "/"}, "not a file"},
		{[]string{"conform", "--config", "conform.go", "./rt", "--", "-c", "x.yml"}, "drop \"-c\""},
	} {
		code, _, errOut := runMain(tc.args...)
		assert.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
		assert.NotContains(t, errOut, "goroutine", "%v", tc.args)
	}
}

func TestConformList(t *testing.T) {
	code, out, _ := runMain("conform", "--list")
	assert.Equal(t, 0, code)
	assert.Equal(t, len(conformance.Catalog()), strings.Count(out, "\n"))
}

// With limits asked for, resources.limits is reported once (skipped with
// the reason where no cgroup can enforce them).
func TestConformLimitsReportedOnce(t *testing.T) {
	code, out, _ := runMain("conform", "--format", "json", "--limit-memory", "50M", "--limit-threads", "20", "--run", "echo.json,resources.*", oeRT, "--", "serve")
	require.Equal(t, 0, code)
	var rep conformance.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	n := 0
	for _, c := range rep.Checks {
		if c.ID == "resources.limits" {
			n++
			assert.NotEmpty(t, c.Message)
		}
	}
	assert.Equal(t, 1, n)
}

func TestConformExplain(t *testing.T) {
	code, out, _ := runMain("conform", "--explain", "shutdown.drain")
	assert.Equal(t, 0, code)
	for _, want := range []string{"shutdown.drain — MUST", "## Rule", "## Why", "## How conform measures it", "## How to fix", "tryShutdown", "server.stop(None)"} {
		assert.Contains(t, out, want)
	}
	code, _, errOut := runMain("conform", "--explain", "shutdown.drian")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "did you mean")
}

// Day one: record the baseline (the run fails, the file is written); then
// the known failure passes the gate and a regression fails it. JUnit
// shows the known failure as skipped with the reason.
func TestConformBaseline(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "conform-baseline.json")
	// With the echo role served by the none fixture, echo.json fails: its
	// answer is empty, not JSON.
	args := func(extra ...string) []string {
		a := []string{"conform", "--strict", "--run", "echo.json,call.fields"}
		return append(append(a, extra...), oeRT, "--", "serve")
	}
	broken := "--function=echo=none"
	code, out, errOut := runMain(args(broken, "--update-baseline", base)...)
	assert.Equal(t, 1, code, "%s\n%s", out, errOut)
	b, err := os.ReadFile(base)
	require.NoError(t, err)
	var rep conformance.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, conformance.CatalogVersion, rep.CatalogVersion)
	assert.NotEmpty(t, rep.OeRtVersion)

	junit := filepath.Join(dir, "report.xml")
	code, out, errOut = runMain(args(broken, "--baseline", base, "--junit", junit)...)
	assert.Equal(t, 0, code, "%s\n%s", out, errOut)
	assert.Contains(t, out, "known: echo.json, since the baseline of")
	assert.Contains(t, out, "FAILED (strict)")
	assert.Contains(t, out, "against the baseline: PASSED")
	x, err := os.ReadFile(junit)
	require.NoError(t, err)
	assert.Contains(t, string(x), `<skipped message="known: echo.json, since the baseline of`)
	assert.Contains(t, string(x), `failures="0"`)

	// A baseline where echo.json passed: now it is a regression.
	code, _, _ = runMain(args("--update-baseline", base)...)
	require.Equal(t, 0, code)
	code, out, _ = runMain(args(broken, "--baseline", base)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "regression: echo.json passed in the baseline of")
	assert.Contains(t, out, "against the baseline: FAILED")

	for _, bad := range []struct{ content, want string }{
		{"not json", "not a JSON report of oe-rt conform"},
		{`{"checks":[]}`, "holds no checks"},
	} {
		f := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(f, []byte(bad.content), 0o644))
		code, _, errOut := runMain("conform", "--baseline", f, oeRT, "--", "serve")
		assert.Equal(t, 2, code)
		assert.Contains(t, errOut, bad.want)
	}
	code, _, errOut = runMain("conform", "--repeat", "0", oeRT, "--", "serve")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--repeat must be at least 1, got 0")
	assertNoChildren(t)
}

// Every flag of oe-rt conform is in the flags table of docs/conformance.md
// (by its long name, or its shorthand), and the table names no flag that
// does not exist.
func TestConformDocsNameEveryFlag(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "conformance.md"))
	require.NoError(t, err)
	table := string(doc)
	start := strings.Index(table, "## Flags")
	require.GreaterOrEqual(t, start, 0, "docs/conformance.md has a ## Flags section")
	table = table[start:]
	table = table[:strings.Index(table[3:], "\n## ")+3]
	cmd := newConformCmd(&env{}, nil)
	flags := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		flags[f.Name] = true
		if f.Name == "help" {
			return
		}
		long := strings.Contains(table, "`--"+f.Name+"`") || strings.Contains(table, "`--"+f.Name+" ")
		short := f.Shorthand != "" && (strings.Contains(table, "`-"+f.Shorthand+"`") || strings.Contains(table, "`-"+f.Shorthand+" "))
		assert.True(t, long || short, "docs/conformance.md's flags table documents --%s", f.Name)
	})
	for _, m := range regexp.MustCompile("`--([a-z-]+)[` ]").FindAllStringSubmatch(table, -1) {
		assert.True(t, flags[m[1]], "docs/conformance.md names --%s, which oe-rt conform does not have", m[1])
	}
}

// -v logs the harness's steps to standard error: the runtime it starts,
// each check as it finishes, the verdict; the report on standard output is
// the same as without -v.
func TestConformVerbose(t *testing.T) {
	code, out, errOut := runMain("conform", "-v", "--run", "echo.json,call.fields", oeRT, "--", "serve")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, `msg="conform starting" runtime="`+oeRT+` serve"`)
	assert.Contains(t, errOut, `msg="check done" id=echo.json level=MUST status=pass`)
	assert.Contains(t, errOut, `msg="check done" id=call.fields`)
	assert.Contains(t, errOut, `msg="conform done" verdict=passed`)
	assert.Contains(t, out, "echo.json")

	code, _, errOut = runMain("conform", "--run", "echo.json", oeRT, "--", "serve")
	require.Equal(t, 0, code)
	assert.Empty(t, errOut, "without -v the harness says nothing on stderr")
}

// --seed replays the sweep: the report prints the seed it was given (text
// and JSON), two runs with it send the same payloads and say the same, and
// --seed 0 is refused (leaving it out picks a new seed).
func TestConformSeed(t *testing.T) {
	code, out, errOut := runMain("conform", "--seed", "42", "--run", "echo.sweep,echo.json-integers", oeRT, "--", "serve")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	assert.Contains(t, out, "seed:     42 (--seed 42 sends the same sweep again)")
	assert.Regexp(t, `PASS  echo.sweep +MUST .* came back as sent \(seed 42\)`, out)
	code, js, errOut := runMain("conform", "--seed", "42", "--run", "echo.sweep", "--format", "json", oeRT, "--", "serve")
	require.Equal(t, 0, code, errOut)
	var rep struct {
		Seed   uint64 `json:"seed"`
		Checks []struct{ Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(js), &rep))
	assert.Equal(t, uint64(42), rep.Seed)
	require.Len(t, rep.Checks, 1)
	same := regexp.MustCompile(`(\d+) payloads of \d+ classes, ([\d.]+ [KM]iB) in all`)
	assert.Equal(t, same.FindStringSubmatch(out), same.FindStringSubmatch(rep.Checks[0].Message), "the same payloads")

	code, _, errOut = runMain("conform", "--seed", "0", oeRT, "--", "serve")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--seed must be at least 1 (leave it out for a new seed)")
	code, _, errOut = runMain("conform", "--seed", "x", oeRT, "--", "serve")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--seed")
	assertNoChildren(t)
}

// conform --image with no Docker engine is a usage error (exit 2) that
// names DOCKER_HOST and the socket it tried; the image's arguments go
// after --; the container-only limits need --image.
func TestConformImageUsage(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/oe-rt-cli-test.sock")
	code, _, stderr := runMain("conform", "--image", "oe-rt-test:none", "--run", "start.listen")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "no Docker engine answers at unix:///nonexistent/oe-rt-cli-test.sock (DOCKER_HOST)")

	code, _, stderr = runMain("conform", "--image", "img", "serve")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "put the container's arguments after --: oe-rt conform --image img -- serve")

	code, _, stderr = runMain("conform", "--limit-swap", "100m", "./x")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "--limit-swap needs --image")
}
