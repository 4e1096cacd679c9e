package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/serve"
)

// serveInProcess runs the reference runtime on a free port of 127.0.0.1
// for the length of the test.
func serveInProcess(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, serve.Options{Address: "127.0.0.1:0", Ready: func(a net.Addr) { ready <- a.String() }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop within 40s")
		}
	})
	select {
	case a := <-ready:
		return a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start within 10s")
	}
	return ""
}

func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBenchUsageErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "not-executable", "#!/bin/sh\nexit 0\n", 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "nothing to load: give --address HOST:PORT or a RUNTIME"},
		{[]string{"bench", "--address", "127.0.0.1:1", "./rt"}, "not both"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-c", "0"}, "-c/--concurrency must be at least 1, got 0"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--connections", "4", "-c", "2"}, "--connections 4 is more than the 2 callers of -c/--concurrency"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-n", "5", "-z", "1s"}, "give -n/--total (calls) or -z/--duration (time), not both"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-z", "-1s"}, "-z/--duration must be positive, got -1s"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-z", "0s"}, "-z/--duration must be positive, got 0s"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-n", "0"}, "-n/--total must be at least 1, got 0"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--warmup", "-1s"}, "--warmup must not be negative, got -1s"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--timeout", "-1s"}, "--timeout must not be negative, got -1s"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--connect-timeout", "0s"}, "--connect-timeout must be positive, got 0s"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--rps", "-5"}, "--rps must be a finite number of calls per second, 0 or more, got -5"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--rps", "NaN"}, "--rps must be a finite number of calls per second, 0 or more, got NaN"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--rps", "Inf"}, "--rps must be a finite number of calls per second, 0 or more, got +Inf"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-c", "100000", "-n", "10"}, "-c/--concurrency 100000 is more than the 10 calls of -n/--total"},
		{[]string{"bench", "--address", "nonsense"}, `--address "nonsense": missing port in address`},
		{[]string{"bench", "--address", "127.0.0.1:1", "--cacert", filepath.Join(dir, "nope.pem")}, "read CA certificate: open " + filepath.Join(dir, "nope.pem")},
		{[]string{"bench", "--address", "127.0.0.1:1", "--payload-size", "10m"}, "payload 10m: a request of 10485"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-o", filepath.Join(dir, "no", "such", "report")}, "-o/--output: open "},
		{[]string{"bench", filepath.Join(dir, "no-such-runtime")}, "start runtime: "},
		{[]string{"bench", dir}, "start runtime: "},
		{[]string{"bench", filepath.Join(dir, "not-executable")}, "start runtime: "},
		{[]string{"bench", "--grace", "0s", "./rt"}, "--grace must be positive, got 0s"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--format", "xml"}, `--format "xml": want text or json`},
		{[]string{"bench", "--address", "127.0.0.1:1", "--assert", "p99<20"}, "p99 needs a unit"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--assert", "rss<50m"}, "needs a RUNTIME started by bench"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--payload", "x", "--payload-size", "1k"}, "--payload and --payload-size are exclusive"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--payload-size", "1q"}, `--payload-size: size "1q": want a number of bytes`},
		{[]string{"bench", "--address", "127.0.0.1:1", "--payload-size", "1k,1024"}, "given twice"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--payload-file", filepath.Join(dir, "nope")}, "--payload-file: read payload"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--profile", "mqtt"}, `--profile "mqtt": want openedge or baetyl`},
		{[]string{"bench", "--address", "127.0.0.1:1", "--dir", dir}, "--dir and --grace apply to a RUNTIME"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--max-msg-size", "0"}, "must be positive"},
		{[]string{"bench", "--address", "127.0.0.1:1", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"bench", "--address", "127.0.0.1:1", "-c", "many"}, "invalid argument"},
		{[]string{"bench", "./rt", "extra", "--", "-x"}, "a RUNTIME's arguments go after --"},
		{[]string{"bench", "./rt", "extra"}, "a RUNTIME's arguments go after --"},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			code, stdout, stderr := runMain(tc.args...)
			assert.Equal(t, ExitUsage, code, stderr)
			assert.Contains(t, stderr, tc.want)
			assert.Empty(t, stdout)
			assert.NotContains(t, stderr, "goroutine", "no stack trace")
		})
	}
}

func TestBenchJSON(t *testing.T) {
	addr := serveInProcess(t)
	code, stdout, stderr := runMain("bench", "--address", addr, "-c", "4", "-n", "300", "--payload-size", "1k", "--format", "json")
	require.Equal(t, ExitOK, code, stderr)
	var got struct {
		Requests, Errors int64
		RPS              float64            `json:"rps"`
		PayloadBytes     int                `json:"payload_bytes"`
		LatencyMS        map[string]float64 `json:"latency_ms"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &got), stdout)
	assert.EqualValues(t, 300, got.Requests)
	assert.Zero(t, got.Errors)
	assert.Positive(t, got.RPS)
	assert.Equal(t, 1024, got.PayloadBytes)
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		assert.Positive(t, got.LatencyMS[k], k)
	}
	assert.LessOrEqual(t, got.LatencyMS["p50"], got.LatencyMS["p99"])
}

func TestBenchTextAndPayloadFile(t *testing.T) {
	addr := serveInProcess(t)
	file := filepath.Join(t.TempDir(), "payload.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"hello":"world"}`), 0o644))
	code, stdout, stderr := runMain("bench", "--address", addr, "-n", "50", "--payload-file", file)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stdout, "Requests 50 (ok 50, errors 0)")
	assert.Contains(t, stdout, "(17 bytes)")
	assert.NotContains(t, stderr, "\x1b[K", "no progress line when stderr is not a terminal")
}

func TestBenchAssert(t *testing.T) {
	addr := serveInProcess(t)
	code, _, stderr := runMain("bench", "--address", addr, "-n", "100", "--assert", "errors=0,requests=100,p99<30s")
	assert.Equal(t, ExitOK, code, stderr)

	code, stdout, stderr := runMain("bench", "--address", addr, "-n", "100", "--assert", "errors=0,p50<1ns")
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, stdout, "Requests 100", "the report is printed before the verdict")
	assert.Contains(t, stderr, "assert failed: p50 is ")
	assert.Contains(t, stderr, "want < 1ns")
	assert.Contains(t, stderr, "1 of 2 --assert bounds broken")

	// Failed calls are counted, not fatal, unless a bound says so.
	code, stdout, stderr = runMain("bench", "--address", addr, "-n", "40", "--function", "fail")
	assert.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stdout, "UNKNOWN")
	code, _, stderr = runMain("bench", "--address", addr, "-n", "40", "--function", "fail", "--assert", "errors<1%")
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, stderr, "errors is 100%, want < 1%")
}

func TestBenchUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	code, stdout, stderr := runMain("bench", "--address", addr, "--connect-timeout", "200ms")
	assert.Equal(t, ExitFailure, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "accepted no connection within 200ms")
}

// Every flag of oe-rt bench is documented in docs/bench.md, and the doc
// names no flag that does not exist.
func TestBenchDocsNameEveryFlag(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "bench.md"))
	require.NoError(t, err)
	cmd := newBenchCmd(&env{}, nil)
	flags := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		flags[f.Name] = true
		assert.Contains(t, string(doc), "`--"+f.Name+"`", "docs/bench.md documents --%s", f.Name)
		if f.Shorthand != "" {
			assert.Contains(t, string(doc), "`-"+f.Shorthand+"`, `--"+f.Name+"`", "docs/bench.md gives -%s", f.Shorthand)
		}
	})
	for _, m := range regexp.MustCompile("`--([a-z-]+)`").FindAllStringSubmatch(string(doc), -1) {
		assert.True(t, flags[m[1]], "docs/bench.md names --%s, which oe-rt bench does not have", m[1])
	}
}

// A runtime that bench started and that dies mid-run gives a clear error,
// and nothing it started is left.
func TestBenchRuntimeDiesMidRun(t *testing.T) {
	script := filepath.Join(t.TempDir(), "dying.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n(sleep 0.7; kill -9 $$) &\nexec \""+oeRT+"\" serve\n"), 0o755))
	code, _, errOut := runMain("bench", "-z", "10s", "-c", "4", script)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "killed")
	assertNoChildren(t)
}

// bench starts a runtime, loads it and stops it; the report has its usage.
func TestBenchStartsRuntime(t *testing.T) {
	code, out, errOut := runMain("bench", "-n", "500", "-c", "4", "--format", "json", oeRT, "--", "serve")
	require.Equal(t, 0, code, errOut)
	var rep struct {
		Requests int64
		Runtime  map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.NotEmpty(t, rep.Runtime, out)
	assertNoChildren(t)
}

// A short run reports the runtime's real peak, not what it was at start:
// a process of the runtime that touched 60 MB and freed it between the
// sampler's looks still counts (its own high-water mark), and the thread
// count says it comes from few samples.
func TestBenchShortRunPeak(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "runtime.sh")
	// The child has freed its 60 MB before the runtime serves.
	body := "#!/bin/sh\npython3 -c \"b = b'x' * (60 << 20); del b; open('" + dir + "/freed', 'w').close(); import time; time.sleep(60)\" &\n" +
		"while [ ! -e '" + dir + "/freed' ]; do sleep 0.01; done\nexec \"" + oeRT + "\" serve\n"
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	code, out, errOut := runMain("bench", "--connect-timeout", "60s", "-n", "100", "--format", "json", script)
	require.Equal(t, 0, code, errOut)
	var rep struct {
		Runtime struct {
			PeakRSS int64 `json:"peak_rss_bytes"`
			Samples int   `json:"samples"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Greater(t, rep.Runtime.PeakRSS, int64(60<<20), out)
	assert.GreaterOrEqual(t, rep.Runtime.Samples, 3, "at start, after the first call, after the run")
	require.NoError(t, os.Remove(filepath.Join(dir, "freed")))
	code, out, errOut = runMain("bench", "--connect-timeout", "60s", "-n", "100", script)
	require.Equal(t, 0, code, errOut)
	if rep.Runtime.Samples < 10 {
		assert.Contains(t, out, "from only", out)
	}
	assertNoChildren(t)
}

// --dir resolves a relative RUNTIME as conform does: under --dir, where
// it runs (`--dir proj ./bin/rt`), else in the current directory
// (`--dir proj proj/bin/rt`); found in neither, the error names both, and
// the exit status is 2.
func TestBenchDirResolvesRuntime(t *testing.T) {
	top := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(top, "proj", "bin"), 0o755))
	require.NoError(t, os.Symlink(oeRT, filepath.Join(top, "proj", "bin", "rt")))
	t.Chdir(top)
	for _, path := range []string{"./bin/rt", "proj/bin/rt"} {
		code, out, errOut := runMain("bench", "-n", "20", "--format", "json", "--dir", "proj", path, "--", "serve")
		require.Equal(t, ExitOK, code, "%s: %s", path, errOut)
		assert.Contains(t, out, `"requests": 20`, path)
	}
	code, _, errOut := runMain("bench", "--dir", "proj", "./nope/rt")
	assert.Equal(t, ExitUsage, code, errOut)
	assert.Contains(t, errOut, "runtime ./nope/rt: no such file: neither "+filepath.Join(top, "proj", "nope", "rt")+" nor "+filepath.Join(top, "nope", "rt"))
	// conform says the same.
	code, _, errOut2 := runMain("conform", "--dir", "proj", "./nope/rt")
	assert.Equal(t, ExitUsage, code, errOut2)
	assert.Contains(t, errOut2, "runtime ./nope/rt: no such file: neither "+filepath.Join(top, "proj", "nope", "rt")+" nor "+filepath.Join(top, "nope", "rt"))
	assertNoChildren(t)
}
