package actiontest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// repoRoot is the repository's top, where action.yml is.
const repoRoot = "../.."

func TestMain(m *testing.M) {
	launch.Init()
	_ = launch.EnableSubreaper() // what a step leaves behind comes back here, to be seen and ended
	os.Exit(m.Run())
}

// job runs the repository's action.yml with inputs in a fresh workspace
// holding files, as a job's step `uses: oe-rt/oe-rt@REF` with `with:
// inputs` does.
func job(t *testing.T, inputs map[string]string, files map[string]string) (*Result, string) {
	t.Helper()
	a, err := Load(filepath.Join(repoRoot, "action.yml"))
	require.NoError(t, err)
	ws := t.TempDir()
	for name, content := range files {
		p := filepath.Join(ws, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
	}
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GITHUB_") || strings.HasPrefix(kv, "OPENEDGE_") || strings.HasPrefix(kv, "BAETYL_") || strings.HasPrefix(kv, "RUNNER_") {
			continue
		}
		env = append(env, kv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := a.Run(ctx, Config{ActionPath: root, Workspace: ws, Temp: t.TempDir(), Inputs: inputs, Env: env, Timeout: 5 * time.Minute})
	require.NoError(t, err)
	assert.Empty(t, res.Leftovers, "processes outlived a step")
	return res, ws
}

// Against oe-rt's reference runtime the action passes: the text report in
// the log, a Markdown table in the job summary, no error annotation, the
// reports as outputs.
func TestActionReference(t *testing.T) {
	res, ws := job(t, nil, nil)
	require.False(t, res.Failed, "log:\n%s", res.Log)
	assert.Regexp(t, `(?m)^oe-rt \S+ .*linux/`, res.Log, "the install step shows the version it built")
	assert.Regexp(t, `(?m)^PASS  start\.listen `, res.Log, "the text report in the log")
	assert.Regexp(t, `(?m)^PASSED \(strict\): \d+ passed, 0 failed, 0 warnings`, res.Log)
	assert.Empty(t, res.Annotations)
	assert.Contains(t, res.Summary, "## oe-rt conform: PASSED (strict)")
	assert.Contains(t, res.Summary, "| PASS | `start.listen` | MUST |")

	assert.Equal(t, "passed", res.Outputs["verdict"])
	assert.Equal(t, "0", res.Outputs["exit-code"])
	for _, k := range []string{"junit", "json", "markdown"} {
		assert.Equal(t, filepath.Join(ws, "conform-report."+map[string]string{"junit": "xml", "json": "json", "markdown": "md"}[k]), res.Outputs[k])
		assert.FileExists(t, res.Outputs[k])
	}
	var rep struct{ Verdict string }
	b, err := os.ReadFile(res.Outputs["json"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, "passed", rep.Verdict)
	x, err := os.ReadFile(res.Outputs["junit"])
	require.NoError(t, err)
	assert.Contains(t, string(x), `failures="0"`)
}

// hostileRuntime is oe-rt serve with an echo that upper-cases, so that the
// echo checks fail for real, and that writes workflow commands of its own
// to both streams at start and in every echo call: none of them may
// become an annotation, nor stop the action's own.
var hostileRuntime = map[string]string{
	"bin/rt": "#!/bin/sh\necho '::error title=forged::from the runtime at start'\necho '::stop-commands::swallow' >&2\nexec oe-rt serve \"$@\"\n",
	"etc/my config.yml": "functions:\n" +
		"  - {name: echo, handler: 'exec:./bad-echo'}\n" +
		"  - {name: context, handler: context}\n  - {name: none, handler: none}\n  - {name: fail, handler: fail}\n  - {name: sleep, handler: sleep}\n",
	"bad-echo": "#!/bin/sh\necho '::error title=forged::from an echo call' >&2\necho '  ::stop-commands::swallow' >&2\ntr a-z A-Z\n",
}

// Against a runtime that fails checks the step fails; every check that
// failed (a warning too, under strict) is one ::error annotation titled
// with its ID, with its cause and hint; the summary shows them; the
// outputs say failed, and the runtime's own workflow commands are inert.
func TestActionFailingRuntime(t *testing.T) {
	res, _ := job(t, map[string]string{"runtime": "bin/rt", "args": `-c 'etc/my config.yml'`}, hostileRuntime)
	require.True(t, res.Failed, "the step fails on a failed verdict; log:\n%s", res.Log)
	assert.Equal(t, "failed", res.Outputs["verdict"])
	assert.Equal(t, "1", res.Outputs["exit-code"])
	assert.Regexp(t, `(?m)^FAIL  echo\.bytes `, res.Log)
	assert.Regexp(t, `(?m)^FAILED \(strict\): `, res.Log)

	var rep struct {
		Checks []struct{ ID, Status, Message, Hint string }
	}
	b, err := os.ReadFile(res.Outputs["json"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	var failed []string
	msg := map[string]string{}
	for _, c := range rep.Checks {
		if c.Status == "fail" || c.Status == "warn" {
			failed = append(failed, c.ID)
			msg[c.ID] = c.Message
		}
	}
	require.Contains(t, failed, "echo.bytes")
	var titles []string
	for _, a := range res.Annotations {
		assert.Equal(t, "error", a.Level, "%+v", a)
		assert.NotEqual(t, "forged", a.Title(), "the runtime's own command became an annotation: %+v", a)
		titles = append(titles, a.Title())
		if m, ok := msg[a.Title()]; ok {
			assert.True(t, strings.HasPrefix(a.Message, m+"\nhow to fix: "), "cause, then hint: %q", a.Message)
			assert.True(t, strings.HasSuffix(a.Message, "(oe-rt conform --explain "+a.Title()+")"), a.Message)
		}
	}
	sort.Strings(failed)
	sort.Strings(titles)
	assert.Equal(t, failed, titles, "one annotation per check that failed")
	assert.Contains(t, res.Summary, "## oe-rt conform: FAILED (strict)")
	assert.Contains(t, res.Summary, "| **FAIL** | `echo.bytes` | MUST |")
	assert.Contains(t, res.Summary, "**`echo.bytes`** (MUST, **FAIL**)")
}

// Inputs that cannot make a command line fail the step with an annotation
// that says which, before conform runs.
func TestActionBadInputs(t *testing.T) {
	for _, tc := range []struct {
		inputs map[string]string
		want   string
	}{
		{map[string]string{"args": "-c x.yml"}, "args given without runtime"},
		{map[string]string{"runtime": "bin/rt", "args": "-c 'x.yml"}, "the args input is not valid shell quoting"},
		{map[string]string{"strict": "yes"}, "the strict input must be true or false"},
	} {
		res, _ := job(t, tc.inputs, nil)
		assert.True(t, res.Failed)
		require.Len(t, res.Annotations, 1, "%v: log:\n%s", tc.inputs, res.Log)
		assert.Equal(t, "oe-rt", res.Annotations[0].Title())
		assert.Contains(t, res.Annotations[0].Message, tc.want)
	}
	// A bad flag is conform's usage error: exit 2, and it says why.
	res, _ := job(t, map[string]string{"flags": "--grace -1s"}, nil)
	assert.True(t, res.Failed)
	assert.Equal(t, "2", res.Outputs["exit-code"])
	assert.Equal(t, "error", res.Outputs["verdict"])
	assert.Contains(t, res.Log, "oe-rt: --grace must be positive")
}

// The harness reads what the runner reads.
func TestHarness(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.WriteFile(p, []byte("a=1\nb<<EOF\nx=y\nz\nEOF\nc=\n"), 0o644))
	kv, err := readKeyValues(p)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "1", "b": "x=y\nz", "c": ""}, kv)
	require.NoError(t, os.WriteFile(p, []byte("b<<EOF\nx\n"), 0o644))
	_, err = readKeyValues(p)
	assert.Error(t, err)

	c := &commandReader{}
	got := c.read("::error title=a%3A b%2C c::x%0Ay 100%25\n  ::warning::w\n::stop-commands::T\n::error::hidden\n::T::\n::notice file=f.go,line=3::n\nno ::error:: here\n")
	require.Len(t, got, 3)
	assert.Equal(t, Annotation{Level: "error", Props: map[string]string{"title": "a: b, c"}, Message: "x\ny 100%"}, got[0])
	assert.Equal(t, "warning", got[1].Level)
	assert.Equal(t, map[string]string{"file": "f.go", "line": "3"}, got[2].Props)

	_, err = evaluate("${{ github.event.pull_request.title }}", nil, nil, nil, Config{})
	assert.ErrorContains(t, err, "not run here")
	v, err := evaluate("${{ inputs.a }}-${{steps.s.outputs.o}}-${{ runner.temp }}", map[string]string{"a": "A"}, map[string]map[string]string{"s": {"o": "O"}}, nil, Config{Temp: "/t"})
	require.NoError(t, err)
	assert.Equal(t, "A-O-/t", v)
}
