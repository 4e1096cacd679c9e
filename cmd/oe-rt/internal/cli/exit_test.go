package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// TestExitCodes is the one table of exit codes and flag errors over every
// command: what a user gets for each mistake, and for each kind of
// outcome. Every row runs oe-rt as a user would (in this process, through
// Main); the message must name the flag or argument at fault.
func TestExitCodes(t *testing.T) {
	addr := serveInProcess(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notExec := writeFile(t, dir, "not-executable.sh", "#!/bin/sh\nexec sleep 60\n", 0o644)
	closed := closedPort(t)
	for _, tc := range []struct {
		args []string
		code int
		want []string // in stderr
		not  []string // not in stderr
	}{
		// The root command, help, completion, version.
		{[]string{}, ExitOK, nil, nil},
		{[]string{"nosuch"}, ExitUsage, []string{`unknown command "nosuch" for "oe-rt"`}, nil},
		{[]string{"serv"}, ExitUsage, []string{`unknown command "serv"`, "did you mean serve?"}, nil},
		{[]string{"-v"}, ExitUsage, []string{"unknown shorthand flag: 'v' in -v"}, nil},
		{[]string{"--version"}, ExitOK, nil, nil},
		{[]string{"help", "nosuch"}, ExitUsage, []string{`unknown help topic "nosuch"`}, nil},
		{[]string{"help", "bench"}, ExitOK, nil, nil},
		{[]string{"completion", "bogus"}, ExitUsage, []string{`unknown shell "bogus": want one of bash, fish, powershell, zsh`}, nil},
		{[]string{"completion", "bash"}, ExitOK, nil, nil},
		{[]string{"version", "extra"}, ExitUsage, []string{`unknown command "extra" for "oe-rt version"`}, nil},
		{[]string{"serve", "extra"}, ExitUsage, []string{`unknown command "extra" for "oe-rt serve"`}, nil},

		// call
		{[]string{"call", "--address", addr, "echo", "x"}, ExitOK, nil, nil},
		{[]string{"call", "--address", addr, "nope"}, ExitFailure, []string{`call "nope" at ` + addr + ": NOT_FOUND"}, nil},
		{[]string{"call", "--address", closed, "--timeout", "300ms", "echo"}, ExitFailure, []string{closed + ": nothing listens there (connection refused)"}, nil},
		{[]string{"call", "--address", closed, "--wait", "300ms", "echo"}, ExitFailure, []string{"waiting up to 300ms (--wait)", closed + ": nothing listens there (connection refused) within --wait 300ms"}, nil},
		{[]string{"call", "--address", "nonsense", "echo"}, ExitUsage, []string{`--address "nonsense": missing port in address`}, nil},
		{[]string{"call", "--address", ":99999", "echo"}, ExitUsage, []string{`--address ":99999": port "99999": want a number from 1 to 65535`}, nil},
		{[]string{"call", "--address", "http://127.0.0.1:80", "echo"}, ExitUsage, []string{`unsupported scheme "http"`}, nil},
		{[]string{"call", "--address", addr, "--cacert", missing, "echo"}, ExitUsage, []string{"read CA certificate: open " + missing}, nil},
		{[]string{"call", "--address", addr, "echo", "@" + missing}, ExitUsage, []string{"read PAYLOAD: open " + missing}, nil},
		{[]string{"call", "--address", addr, "--timeout", "0s", "echo"}, ExitUsage, []string{"--timeout must be positive, got 0s"}, nil},
		{[]string{"call", "--address", addr, "-o", "json", "echo"}, ExitUsage, []string{"use --format json"}, nil},
		{[]string{"call", "--address", addr, "--format", "yaml", "echo"}, ExitUsage, []string{`--format "yaml": want raw or json`}, nil},
		{[]string{"call", "--address", addr, "-o", "/dev/full", "echo", "x"}, ExitUsage, []string{"write output: "}, nil},

		// conform
		{[]string{"conform", missing}, ExitUsage, []string{"start runtime"}, nil},
		{[]string{"conform", dir}, ExitUsage, []string{"start runtime"}, nil},
		{[]string{"conform", notExec}, ExitUsage, []string{"start runtime"}, nil},
		{[]string{"conform", "--start-timeout", "1s", "--run", "start.listen", "/bin/sleep", "--", "30"}, ExitFailure, nil, nil},
		{[]string{"conform", "--grace", "10"}, ExitUsage, []string{`invalid argument "10" for "--grace" flag`}, []string{"go after --"}},
		{[]string{"conform", "./rt", "-c", "x"}, ExitUsage, []string{"unknown shorthand flag: 'c' in -c", "The runtime's own flags go after --"}, nil},
		{[]string{"conform", "./rt", "--cfg", "x"}, ExitUsage, []string{"unknown flag: --cfg", "The runtime's own flags go after --"}, nil},
		{[]string{"conform", "--start-timeout", "0s"}, ExitUsage, []string{"--start-timeout must be positive, got 0s"}, []string{"grace"}},
		{[]string{"conform", "--grace", "0s"}, ExitUsage, []string{"--grace must be positive, got 0s"}, []string{"start"}},
		{[]string{"conform", "--limit-threads", "-3"}, ExitUsage, []string{"--limit-threads must be at least 1, got -3"}, nil},
		{[]string{"conform", "--limit-memory", "0"}, ExitUsage, []string{`invalid argument "0" for "--limit-memory" flag: size "0" must be positive`}, nil},
		{[]string{"conform", "-o", filepath.Join(dir, "r"), "--junit", filepath.Join(dir, ".", "r")}, ExitUsage, []string{"-o/--output and --junit name the same file"}, nil},
		{[]string{"conform", "--env", "OPENEDGE_SERVICE_ADDRESS=127.0.0.1:1"}, ExitUsage, []string{"the harness sets OPENEDGE_SERVICE_ADDRESS itself"}, nil},
		{[]string{"conform", "--env", "BAETYL_SERVICE_INSTANCE_NAME=x"}, ExitUsage, []string{"the harness sets BAETYL_SERVICE_INSTANCE_NAME itself"}, nil},
		{[]string{"conform", "--format", "xml"}, ExitUsage, []string{`--format "xml": want text, json or junit`}, nil},
		{[]string{"conform", "--run", "nope.*"}, ExitUsage, []string{`--run "nope.*": no check matches`}, nil},
		{[]string{"conform", "--list", "./rt"}, ExitUsage, []string{"--list takes no RUNTIME"}, nil},
		{[]string{"conform", "--run", "echo.json", "-o", "/dev/full", oeRT, "--", "serve"}, ExitUsage, []string{"write report: "}, nil},
		{[]string{"conform", "--run", "echo.json", "--junit", filepath.Join(missing, "report.xml"), oeRT, "--", "serve"}, ExitUsage, []string{"write JUnit report: "}, nil},

		// bench
		{[]string{"bench", "--address", addr, "-n", "20"}, ExitOK, nil, nil},
		{[]string{"bench", "--address", addr, "-n", "20", "--assert", "p50<1ns"}, ExitFailure, []string{"assert failed: p50 is"}, nil},
		{[]string{"bench", "--address", closed, "--connect-timeout", "200ms"}, ExitFailure, []string{"accepted no connection within 200ms"}, nil},
		{[]string{"bench", missing}, ExitUsage, []string{"start runtime: "}, nil},
		{[]string{"bench", dir}, ExitUsage, []string{"start runtime: "}, nil},
		{[]string{"bench", notExec}, ExitUsage, []string{"start runtime: "}, nil},
		{[]string{"bench", "--address", addr, "--cacert", missing}, ExitUsage, []string{"read CA certificate: open " + missing}, nil},
		{[]string{"bench", "--address", addr, "--payload-file", missing}, ExitUsage, []string{"--payload-file: read payload: open " + missing}, nil},
		{[]string{"bench", "--address", addr, "-n", "20", "-o", "/dev/full"}, ExitUsage, []string{"write report: "}, nil},
		{[]string{"bench", "--address", addr, "--rps", "NaN"}, ExitUsage, []string{"--rps must be a finite number"}, nil},
		{[]string{"bench", "--address", addr, "--rps", "Inf"}, ExitUsage, []string{"--rps must be a finite number"}, nil},
		{[]string{"bench", "--address", addr, "-c", "100000", "-n", "10"}, ExitUsage, []string{"-c/--concurrency 100000 is more than the 10 calls of -n/--total"}, nil},
		{[]string{"bench", "--address", addr, "--payload-size", "10m"}, ExitUsage, []string{"payload 10m: a request of", "--max-msg-size"}, nil},
		{[]string{"bench", "--address", "nonsense"}, ExitUsage, []string{`--address "nonsense": missing port in address`}, nil},
		{[]string{"bench", "--address", addr, "-z", "0s"}, ExitUsage, []string{"-z/--duration must be positive, got 0s"}, nil},
		{[]string{"bench", "--address", addr, "--connect-timeout", "0s"}, ExitUsage, []string{"--connect-timeout must be positive, got 0s"}, []string{"warmup", "--timeout"}},

		// new
		{[]string{"new"}, ExitUsage, []string{"missing NAME"}, nil},
		{[]string{"new", "rt", "--lang", "cobol", "--dir", filepath.Join(dir, "rt")}, ExitUsage, []string{`unknown language "cobol"`}, nil},
		{[]string{"new", "rt", "--lang", "go", "--dir", dir}, ExitFailure, []string{"is not empty"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runMain(tc.args...)
			assert.Equal(t, tc.code, code, "stderr: %s", stderr)
			for _, w := range tc.want {
				assert.Contains(t, stderr, w)
			}
			for _, w := range tc.not {
				assert.NotContains(t, stderr, w)
			}
			assert.NotContains(t, stderr, "goroutine ", "no stack trace")
			if tc.code == ExitUsage && len(tc.want) > 0 {
				assert.True(t, strings.HasPrefix(stderr, "oe-rt: "), "one error style: %q", stderr)
			}
		})
	}
	assertNoChildren(t)
}

// closedPort returns an address of 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestInterrupted: SIGINT in the middle of a run exits 2 in conform and in
// bench alike, each having written the report of what it did, and nothing
// they started is left.
func TestInterrupted(t *testing.T) {
	addr := serveInProcess(t) // a child process would count as one left
	for _, tc := range []struct {
		name   string
		args   []string
		report string
	}{
		{"conform", []string{"conform", "--start-timeout", "30s", "--format", "json", "/bin/sleep", "--", "60"}, `"checks"`},
		{"bench", []string{"bench", "--address", addr, "-z", "30s", "--format", "json"}, `"requests"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, oeRT, tc.args...)
			cmd.Env = cleanEnv()
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			require.NoError(t, cmd.Start())
			time.Sleep(time.Second)
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			err := cmd.Wait()
			require.NoError(t, ctx.Err(), "oe-rt %s did not stop after SIGINT", tc.name)
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, ExitInterrupted, ee.ExitCode(), errb.String())
			assert.Contains(t, errb.String(), "oe-rt: interrupted by SIGINT")
			assert.Contains(t, out.String(), tc.report, "the report of what was done is written")
			assert.True(t, json.Valid(out.Bytes()), "a whole report: %s", out.String())
			assertNoChildren(t)
		})
	}
}

// A second Ctrl-C ends oe-rt at once, and what it started dies with it.
func TestInterruptedTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	// A runtime that ignores SIGTERM and never listens.
	cmd := exec.CommandContext(ctx, oeRT, "conform", "--start-timeout", "30s", "--grace", "30s", "/bin/sh", "--", "-c", `trap "" TERM INT; exec sleep 61.234`)
	cmd.Env = cleanEnv()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	time.Sleep(time.Second)
	// Two different signals: the kernel would merge a second SIGINT sent
	// while the first is pending.
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	second := time.Now()
	err := cmd.Wait()
	assert.Less(t, time.Since(second), time.Second, "the second SIGINT ends oe-rt at once")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, ExitInterrupted, ee.ExitCode(), errb.String())
	assert.Regexp(t, `oe-rt: interrupted by SIG(INT|TERM) again: exiting at once`, errb.String())
	// The launcher's guard ends the runtime within its bound, wherever it
	// was re-parented.
	alive := func() (pids []int) {
		for _, p := range launch.All() {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid)); err == nil && p.State != 'Z' &&
				strings.Contains(string(b), "sleep\x0061.234") {
				pids = append(pids, p.Pid)
			}
		}
		return pids
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(alive()) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Empty(t, alive(), "the runtime outlived oe-rt")
}

// The exit codes are documented where users look: the README has the table
// and each command's --help says them.
func TestExitCodesDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	for _, s := range []string{"| 0 |", "| 1 |", "| 2 |", "SIGINT"} {
		assert.Contains(t, string(readme), s)
	}
	for _, c := range []string{"call", "conform", "bench"} {
		_, out, _ := runMain(c, "--help")
		assert.Contains(t, out, "Exit status:", "oe-rt %s --help", c)
	}
	_, out, _ := runMain("--help")
	assert.Contains(t, out, "exits 0")
}
