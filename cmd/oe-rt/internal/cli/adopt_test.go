package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// --junit, --json, --markdown and --annotations each write their report
// beside the text report on standard output, from one run.
func TestConformReportFiles(t *testing.T) {
	dir := t.TempDir()
	f := func(n string) string { return filepath.Join(dir, n) }
	// The echo role served by the context fixture: the echo checks fail
	// for real.
	code, out, stderr := runMain("conform", "--run", "start.listen,echo.bytes,echo.json", "--function", "echo=context",
		"--junit", f("r.xml"), "--json", f("r.json"), "--markdown", f("r.md"), "--annotations", f("r.ann"), oeRT, "--", "serve")
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, out, "FAIL  echo.bytes", "the text report on standard output")
	assert.Regexp(t, `(?m)^FAILED: 1 passed, 2 failed`, out)

	var rep struct {
		Verdict string `json:"verdict"`
		Checks  []struct{ ID, Status string }
	}
	b, err := os.ReadFile(f("r.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, "failed", rep.Verdict)
	assert.Len(t, rep.Checks, 3)
	xml, err := os.ReadFile(f("r.xml"))
	require.NoError(t, err)
	assert.Contains(t, string(xml), `<testcase name="echo.bytes"`)
	md, err := os.ReadFile(f("r.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## oe-rt conform: FAILED")
	assert.Contains(t, string(md), "| **FAIL** | `echo.bytes` | MUST |")
	ann, err := os.ReadFile(f("r.ann"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(ann)), "\n")
	require.Len(t, lines, 2, string(ann))
	assert.Regexp(t, `^::error title=echo\.bytes::.+%0Ahow to fix: `, lines[0])
	assert.Regexp(t, `^::error title=echo\.json::`, lines[1])
	for _, fi := range []string{"r.xml", "r.json", "r.md", "r.ann"} {
		st, err := os.Stat(f(fi))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), fi)
	}

	// $GITHUB_STEP_SUMMARY is appended to: other steps' summaries stay.
	summary := writeFile(t, dir, "summary.md", "earlier step\n", 0o644)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	code, _, stderr = runMain("conform", "--run", "start.listen", "--markdown", summary, oeRT, "--", "serve")
	assert.Equal(t, 0, code, stderr)
	b, err = os.ReadFile(summary)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "earlier step\n## oe-rt conform: PASSED"), string(b))
}

// A --format value given to -o is refused, naming the flag meant; two
// report flags naming one file are refused.
func TestOutputGivenAFormat(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"conform", "-o", "json"}, `-o/--output "json" names the file to write the output to; for json output use --format json, or --json FILE to write it beside the text report (for a file of that name, give ./json)`},
		{[]string{"conform", "-o", "junit"}, `for junit output use --format junit, or --junit FILE`},
		{[]string{"conform", "-o", "text"}, `for text output use --format text (for a file of that name, give ./text)`},
		{[]string{"bench", "--address", "127.0.0.1:1", "-o", "json"}, `-o/--output "json" names the file to write the output to; for json output use --format json (for a file`},
		{[]string{"call", "--address", "127.0.0.1:1", "-o", "raw", "echo"}, `for raw output use --format raw`},
		{[]string{"conform", "--json", dir + "/a", "--markdown", dir + "/a"}, "--json and --markdown name the same file"},
		{[]string{"conform", "--junit", dir + "/b", "--update-baseline", dir + "/b"}, "--junit and --update-baseline name the same file"},
		{[]string{"conform", "--list", "--format", "junit"}, `--format "junit": want text or json`},
	} {
		code, out, stderr := runMain(tc.args...)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
		assert.Empty(t, out)
	}
	_, err := os.Stat("json")
	assert.ErrorIs(t, err, os.ErrNotExist, "no file named json written")
}

// --update-baseline writes a file to commit and share: 0644, not the
// temporary file's 0600.
func TestBaselineFileMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "conform-baseline.json")
	code, _, stderr := runMain("conform", "--run", "start.listen", "--update-baseline", p, oeRT, "--", "serve")
	require.Equal(t, 0, code, stderr)
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}

// --list shows the limits it would check against, never a raw
// placeholder; --format json is JSON; the completion descriptions too.
func TestConformListLimits(t *testing.T) {
	placeholder := regexp.MustCompile(`\{[a-z]+\}`)
	code, out, stderr := runMain("conform", "--list")
	require.Equal(t, 0, code, stderr)
	assert.NotRegexp(t, placeholder, out)
	assert.Contains(t, out, "holds in 50.0 MiB")
	assert.Contains(t, out, "within the grace period (10s)")

	code, out, stderr = runMain("conform", "--list", "--limit-memory", "64m", "--limit-threads", "30", "--grace", "3s")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "holds in 64.0 MiB")
	assert.Contains(t, out, "at most 30 threads")
	assert.Contains(t, out, "within the grace period (3s)")

	code, out, stderr = runMain("conform", "--list", "--format", "json")
	require.Equal(t, 0, code, stderr)
	var list struct {
		CatalogVersion int `json:"catalog_version"`
		Checks         []struct {
			ID, Level, Description string
			Fixtures               []string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	assert.Positive(t, list.CatalogVersion)
	require.NotEmpty(t, list.Checks)
	for _, c := range list.Checks {
		assert.NotRegexp(t, placeholder, c.Description)
		assert.NotNil(t, c.Fixtures, "%s: fixtures is always a list", c.ID)
	}

	_, out, _ = runMain("__complete", "conform", "--run", "")
	assert.Contains(t, out, "resources.memory\tSHOULD: the runtime holds in 50.0 MiB")
	assert.NotRegexp(t, placeholder, out)
	_, out, _ = runMain("__complete", "conform", "--explain", "shutdown.")
	assert.Contains(t, out, "shutdown.drain\t")
	assert.NotContains(t, out, "shutdown.*", "--explain takes one ID, not a group")
	assert.NotRegexp(t, placeholder, out)
}

// bench --help lists its flags in order, as every other command does.
func TestBenchHelpSorted(t *testing.T) {
	code, out, _ := runMain("bench", "--help")
	require.Equal(t, 0, code)
	flags := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([\w-]+)`).FindAllStringSubmatch(out, -1)
	var names []string
	for _, m := range flags {
		names = append(names, m[1])
	}
	require.Greater(t, len(names), 10)
	assert.True(t, sort.StringsAreSorted(names), "%v", names)
}

// Where standard error is no terminal (a CI log), bench writes a plain
// progress line every few seconds; its JSON has every field, errors or
// not.
func TestBenchProgressInALog(t *testing.T) {
	addr := serveInProcess(t)
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 200 * time.Millisecond
	code, out, stderr := runMain("bench", "--address", addr, "-z", "1500ms", "--rps", "100", "-c", "2", "--format", "json")
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `(?m)^bench: \d+ calls, 0 errors, [\d.]+m?s of 1.5s, \d+ calls/s$`, stderr)
	assert.NotContains(t, stderr, "\x1b", "no terminal codes in a log")
	var got map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.JSONEq(t, `{}`, string(got["error_codes"]))
	assert.JSONEq(t, `{}`, string(got["error_samples"]))
}

// call to an address where nothing listens fails at once, saying so; with
// --wait it says that it waits, then fails when nothing came.
func TestCallNothingListens(t *testing.T) {
	addr, err := launch.FreePort()
	require.NoError(t, err)
	start := time.Now()
	r := oe(t, nil, nil, "call", "--address", addr, "echo", "x")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "oe-rt: "+addr+": nothing listens there (connection refused); start the runtime first, or give --wait 10s to wait for it\n", r.stderr)
	assert.Less(t, time.Since(start), commandTimeout/2, "at once, not after --timeout")

	r = oe(t, nil, nil, "call", "--address", addr, "--wait", "300ms", "echo", "x")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "oe-rt: nothing listens at "+addr+" yet: waiting up to 300ms (--wait) for a runtime to listen\n")
	assert.Contains(t, r.stderr, "oe-rt: "+addr+": nothing listens there (connection refused) within --wait 300ms\n")

	r = oe(t, nil, nil, "call", "--address", addr, "--wait", "-1s", "echo")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "--wait must not be negative")
}

// --tls against a plaintext runtime: the handshake's error and a hint.
func TestCallTLSAgainstPlaintext(t *testing.T) {
	_, addr := startServe(t, serveSpec{})
	r := oe(t, nil, nil, "call", "--address", addr, "--insecure", "--timeout", "5s", "echo", "x")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "UNAVAILABLE")
	assert.Contains(t, r.stderr, "(TLS against a plaintext runtime?")
}

// On a terminal call ends the payload with a newline; to a pipe or a file
// it writes the payload as it is.
func TestCallFinalNewlineOnATerminal(t *testing.T) {
	addr := serveInProcess(t)
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	require.NoError(t, unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	defer pts.Close()
	// Raw mode: the terminal does not turn \n into \r\n.
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	require.NoError(t, err)
	tio.Oflag &^= unix.OPOST
	require.NoError(t, unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, tio))

	var errb strings.Builder
	code := Main([]string{"call", "--address", addr, "echo", "hello"}, strings.NewReader(""), pts, &errb)
	require.Equal(t, 0, code, errb.String())
	buf := make([]byte, 64)
	require.NoError(t, ptmx.SetReadDeadline(time.Now().Add(10*time.Second)))
	k, err := ptmx.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(buf[:k]))

	code, out, _ := runMain("call", "--address", addr, "echo", "hello")
	require.Equal(t, 0, code)
	assert.Equal(t, "hello", out, "no newline added outside a terminal")
}

// new --force over a project of another language says so.
func TestNewForceOverAnotherLanguage(t *testing.T) {
	dir := t.TempDir()
	r := oe(t, nil, nil, "new", "rt", "--lang", "go", "--dir", dir+"/rt")
	require.Equal(t, 0, r.code, r.stderr)
	r = oe(t, nil, nil, "new", "rt", "--lang", "python", "--dir", dir+"/rt", "--force")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "oe-rt: note: "+dir+"/rt holds a go project (go.mod): --force wrote a python project over it; the go files stay beside the new ones")
	r = oe(t, nil, nil, "new", "rt", "--lang", "python", "--dir", dir+"/py")
	require.Equal(t, 0, r.code, r.stderr)
	r = oe(t, nil, nil, "new", "rt", "--lang", "python", "--dir", dir+"/py", "--force")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "note:", "python over python: nothing to say")
}

// version shows the module version and the commit from the build
// information.
func TestVersionString(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207124447-57a4a72087dc+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "57a4a72087dc863e023b9172734d6c2ad4cede27"}, {Key: "vcs.modified", Value: "true"}}}
	assert.Equal(t, "oe-rt v0.0.0-20261207124447-57a4a72087dc+dirty (commit 57a4a72087dc, modified) linux/arm go1.26.8",
		versionString("dev", bi, "linux/arm", "go1.26.8"))
	assert.Equal(t, "oe-rt v1.2.3 (commit 57a4a72087dc) linux/amd64 go1.26.8",
		versionString("v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: bi.Settings[:1]}, "linux/amd64", "go1.26.8"))
	assert.Equal(t, "oe-rt dev linux/amd64 go1.26.8", versionString("dev", nil, "linux/amd64", "go1.26.8"))

	// The binary built for these tests: its own build information.
	r := oe(t, nil, nil, "version")
	require.Equal(t, 0, r.code)
	assert.Regexp(t, `^oe-rt \S+( \(commit [0-9a-f]{12}(, modified)?\))? linux/\w+ go1\.\S+\n$`, r.stdout)
}
