package conformance_test

// The verdict must be true: for each way a half-written runtime breaks, a
// re-executed test binary breaking it that way, and what the report must
// say — the verdict, the check that names the real cause, what still
// passes, what must never be printed, the time bound, and that nothing is
// left running.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// run runs the suite against a fake runtime and checks the invariants every
// run must hold: it ends within the bound, leaves nothing running, and its
// text report says the same verdict as the report.
func run(t *testing.T, mode string, mut func(*conformance.Config)) *conformance.Report {
	t.Helper()
	cfg := config(t, mode)
	if mut != nil {
		mut(cfg)
	}
	start := time.Now()
	rep, err := conformance.Run(context.Background(), cfg)
	took := time.Since(start)
	require.NoError(t, err)
	bound := cfg.StartTimeout + cfg.Grace + 15*time.Second
	assert.Less(t, took, bound, "the run must end within start timeout + grace + 15 s")
	assertNoChildren(t)
	var text bytes.Buffer
	require.NoError(t, printer.Text{}.Write(&text, rep))
	assert.Contains(t, text.String(), strings.ToUpper(string(rep.Verdict)))
	if rep.Verdict != conformance.Passed {
		assert.NotRegexp(t, `(?m)^PASSED`, text.String(), "no line says PASSED, not even one the runtime forged")
	}
	t.Logf("%s", text.String())
	return rep
}

func result(t *testing.T, rep *conformance.Report, id string) conformance.Result {
	t.Helper()
	r, ok := byID(rep)[id]
	require.True(t, ok, "%s not in the report", id)
	return r
}

// messages joins every message of the report but call.unknown-function's
// (whose pass quotes NOT_FOUND), for what must never appear.
func messages(rep *conformance.Report) string {
	var b strings.Builder
	for _, r := range rep.Checks {
		if r.ID == "call.unknown-function" && r.Status == conformance.Pass {
			continue
		}
		b.WriteString(r.ID + ": " + r.Message + "\n")
	}
	return b.String()
}

func TestVerdictEveryCallNotFound(t *testing.T) {
	rep := run(t, "notfound-all", func(c *conformance.Config) { c.Strict = true })
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assert.Contains(t, rep.Reason, "not run")
	r := result(t, rep, "echo.json")
	assert.Equal(t, conformance.Skip, r.Status)
	assert.Contains(t, r.Message, `answered NOT_FOUND: nothing is served here`, "the message quotes what was received")
	assert.NotContains(t, messages(rep), "stopped serving")
}

func TestVerdictUnavailableFixtures(t *testing.T) {
	rep := run(t, "unavailable-all", nil)
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "echo.json")
	assert.Equal(t, conformance.Fail, r.Status, "UNAVAILABLE is the runtime's answer: a failure, not a missing fixture")
	assert.Contains(t, r.Message, "UNAVAILABLE: the backend of echo is down")
	assert.NotContains(t, messages(rep), "NOT_FOUND")
	assert.NotContains(t, messages(rep), "stopped serving")
}

func TestVerdictNoSuchFixtureName(t *testing.T) {
	rep := run(t, "serve", func(c *conformance.Config) { c.Functions = map[string]string{"echo": "nosuch"} })
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "call.fields")
	assert.Equal(t, conformance.Skip, r.Status)
	assert.Contains(t, r.Message, `function "nosuch" answered NOT_FOUND`)
}

func TestVerdictWrongService(t *testing.T) {
	rep := run(t, "serve", func(c *conformance.Config) { c.Service = "acme.Function" })
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "echo.json")
	assert.Equal(t, conformance.Skip, r.Status)
	assert.Contains(t, r.Message, "does not serve acme.Function")
}

func TestVerdictNeverStarts(t *testing.T) {
	rep := run(t, "exit-at-once", func(c *conformance.Config) { c.Run = []string{"call.*", "echo.*"} })
	assert.Equal(t, conformance.Failed, rep.Verdict, "a runtime that did not start fails the run, whatever --run says")
	r := result(t, rep, "start.listen")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "exit status 3")
	require.NotEmpty(t, r.Output, "what the runtime wrote while it tried to start")
	assert.Contains(t, r.Output[0].Text, "fake runtime, mode exit-at-once")
	assert.Nil(t, rep.Runtime.ReadyMS, "no start figure for a runtime that never started")
	assert.Nil(t, rep.Runtime.CallP50MS)
}

func TestVerdictSleepThatDoesNotSleep(t *testing.T) {
	rep := run(t, "sleep-instant-drop", nil)
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "call.concurrent")
	assert.Equal(t, conformance.Warn, r.Status)
	assert.Contains(t, r.Message, "sleep 500 ms returned after")
	d := result(t, rep, "shutdown.drain")
	assert.Equal(t, conformance.Fail, d.Status)
	// Its OK came either before SIGTERM could be sent or just after (the
	// instant answer may reach conform as the signal goes, on a busy
	// machine): both say the sleep returned before its time.
	assert.Regexp(t, `sleep 1000 ms returned after|the 1s sleep in flight when SIGTERM arrived returned OK`, d.Message)
	assert.NotContains(t, messages(rep), "overloaded")
}

func TestVerdictHugeReply(t *testing.T) {
	// A 100 MB reply takes seconds to make on a busy machine, race-built:
	// the run's time budget (start timeout + grace + 12 s) must hold them.
	// Only the checks asserted on run: every echo costs a 100 MB reply.
	rep := run(t, "huge-reply", func(c *conformance.Config) {
		c.StartTimeout = 30 * time.Second
		c.Run = []string{"start.listen", "call.oversize", "echo.json", "context.metadata"}
	})
	o := result(t, rep, "call.oversize")
	assert.Equal(t, conformance.Warn, o.Status)
	assert.Contains(t, o.Message, "accepted")
	assert.Contains(t, o.Message, "100.0 MiB reply")
	j := result(t, rep, "echo.json")
	assert.Equal(t, conformance.Fail, j.Status)
	assert.Contains(t, j.Message, "100.0 MiB reply")
	assert.NotContains(t, messages(rep), "stopped serving")
	assert.Equal(t, conformance.Pass, result(t, rep, "context.metadata").Status, "other functions still get verdicts")
}

// conform's own memory stays bounded against a runtime that answers 100 MB:
// measured on the oe-rt binary as a process of its own.
func TestHugeReplyKeepsConformSmall(t *testing.T) {
	self := fakeBin
	cmd := exec.Command(oeRT, "conform", "--run", "echo.*,call.*", "--format", "json", self)
	cmd.Env = append(os.Environ(), "OE_RT_FAKE=huge-reply")
	var out bytes.Buffer
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	// The peak of oe-rt's own resident set (VmHWM), read until it exits:
	// rusage would count the runtime it started too.
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var peak int64
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(10 * time.Millisecond):
			if v := vmHWM(cmd.Process.Pid); v > peak {
				peak = v
			}
		}
	}
	var rep conformance.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "%s", out.String())
	assert.Greater(t, peak, int64(0))
	assert.Less(t, peak, int64(150<<20), "oe-rt conform's peak RSS")
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assertNoChildren(t)
}

func TestVerdictInterrupted(t *testing.T) {
	cfg := config(t, "ignore-term")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(700 * time.Millisecond); cancel() }()
	start := time.Now()
	rep, err := conformance.Run(ctx, cfg)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 700*time.Millisecond+2*time.Second, "an interrupt ends everything within 2 s")
	assertNoChildren(t)
	assert.Equal(t, conformance.Interrupted, rep.Verdict)
	assert.False(t, rep.Passed)
	var text, js, junit bytes.Buffer
	require.NoError(t, printer.Text{}.Write(&text, rep))
	require.NoError(t, printer.JSON(&js, rep))
	require.NoError(t, printer.JUnit(&junit, rep))
	assert.Contains(t, text.String(), "INTERRUPTED")
	assert.NotContains(t, text.String(), "PASSED")
	assert.Contains(t, js.String(), `"verdict": "interrupted"`)
	assert.Contains(t, js.String(), `"passed": false`)
	assert.Contains(t, junit.String(), `value="interrupted"`)
	assert.NotContains(t, junit.String(), `errors="0"`)
}

func TestVerdictCrashOnUnknownFunction(t *testing.T) {
	rep := run(t, "crash-unknown", nil)
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assert.Equal(t, conformance.Pass, result(t, rep, "start.listen").Status, "it listened and took the call")
	r := result(t, rep, "call.unknown-function")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "exited (exit status 3) while answering a call to the unconfigured function")
	for _, id := range []string{"call.fields", "echo.json", "echo.bytes", "call.sequence", "shutdown.drain"} {
		assert.Equal(t, conformance.Pass, result(t, rep, id).Status, "%s still gets a verdict on a fresh instance", id)
	}
	assert.GreaterOrEqual(t, rep.Runtime.Restarts, 1)
	assert.NotContains(t, messages(rep), "NOT_FOUND")
}

func TestVerdictCrashInFail(t *testing.T) {
	rep := run(t, "crash-fail", nil)
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "fail.status")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "exited (exit status 3) while answering the call to the fail fixture")
	require.NotEmpty(t, r.Output, "the output under the failure is the crashing instance's")
	assert.Contains(t, r.Output[len(r.Output)-1].Text, "crashing in fail")
	for _, id := range []string{"echo.json", "context.metadata", "call.sequence", "call.concurrent", "call.deadline",
		"shutdown.sigterm", "shutdown.drain", "shutdown.no-orphans"} {
		assert.Equal(t, conformance.Pass, result(t, rep, id).Status, "%s still gets a verdict", id)
	}
	msgs := messages(rep)
	assert.NotContains(t, msgs, "NOT_FOUND")
	assert.NotContains(t, msgs, "stopped serving")
	a := result(t, rep, "run.alive")
	assert.Equal(t, conformance.Fail, a.Status)
	assert.Contains(t, a.Message, "see fail.status")
}

func TestVerdictCrashInSleep(t *testing.T) {
	rep := run(t, "crash-sleep", nil)
	assert.Equal(t, conformance.Warn, result(t, rep, "call.concurrent").Status)
	assert.Contains(t, result(t, rep, "call.concurrent").Message, "exited (exit status 3)")
	assert.Equal(t, conformance.Pass, result(t, rep, "echo.json").Status)
	assert.Equal(t, conformance.Pass, result(t, rep, "fail.status").Status)
}

func TestVerdictHangAfterTenCalls(t *testing.T) {
	rep := run(t, "hang-after-10", func(c *conformance.Config) { c.Grace = 2 * time.Second })
	assert.Equal(t, conformance.Failed, rep.Verdict)
	var hung int
	for _, r := range rep.Checks {
		if strings.Contains(r.Message, "no answer") {
			hung++
			assert.Regexp(t, `hung in|answered \d+ calls`, r.Message, "%s names the pattern", r.ID)
		}
	}
	assert.GreaterOrEqual(t, hung, 1)
	assert.NotContains(t, messages(rep), "stopped serving")
}

func TestVerdictStopsItself(t *testing.T) {
	rep := run(t, "stop-after-20", func(c *conformance.Config) { c.Grace = 2 * time.Second })
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assert.Contains(t, messages(rep), "stopped (SIGSTOP)")
}

func TestVerdictSlowAnswers(t *testing.T) {
	rep := run(t, "slow-300", func(c *conformance.Config) { c.Run = []string{"start.*", "echo.json", "call.fields"} })
	assert.Equal(t, conformance.Pass, result(t, rep, "start.listen").Status, "a slow answer is not a failure to start")
	assert.Equal(t, conformance.Pass, result(t, rep, "echo.json").Status)
}

func TestVerdictExitAfterFirstCall(t *testing.T) {
	rep := run(t, "exit-after-first", nil)
	assert.Equal(t, conformance.Failed, rep.Verdict)
	// The shutdown instance exits 20 ms after its first call, the one kept
	// in flight: before SIGTERM, which is then not judged as handled. On a
	// machine so loaded that the call reaches it only after SIGTERM, it
	// handles SIGTERM, and the call it then drops fails shutdown.drain.
	if s := result(t, rep, "shutdown.sigterm"); s.Status == conformance.Pass {
		assert.Equal(t, conformance.Fail, result(t, rep, "shutdown.drain").Status, "sigterm: %s", s.Message)
	} else {
		assert.Contains(t, s.Message, "before SIGTERM was sent")
	}
	a := result(t, rep, "run.alive")
	assert.Equal(t, conformance.Fail, a.Status)
	assert.Contains(t, a.Message, "exited by itself")
}

func TestVerdictIgnoresTermIsBounded(t *testing.T) {
	rep := run(t, "ignore-term", func(c *conformance.Config) { c.Grace = 2 * time.Second })
	assert.Equal(t, conformance.Fail, result(t, rep, "shutdown.sigterm").Status)
	// The main instance is not waited out: SIGKILL follows SIGTERM within
	// a second (judged on the instance's own record, not on the run's
	// wall time, which a busy machine stretches).
	var main *conformance.InstanceReport
	for i := range rep.Instances {
		if rep.Instances[i].Role == "main" {
			main = &rep.Instances[i]
			break
		}
	}
	require.NotNil(t, main)
	require.NotNil(t, main.StopMS, "conform stopped the main instance")
	require.NotNil(t, main.EndedMS)
	assert.Less(t, *main.EndedMS-*main.StopMS, float64((time.Second + time.Second).Milliseconds()), "the main instance is not waited out: %+v", *main)
}

func TestVerdictSlowStartIsBounded(t *testing.T) {
	rep := run(t, "slow-start-var", func(c *conformance.Config) {
		c.Env = append(c.Env, "OE_RT_FAKE_DELAY=1500ms")
		c.StartTimeout, c.Grace = 5*time.Second, 2*time.Second
	})
	assert.Equal(t, conformance.Pass, result(t, rep, "start.listen").Status)
	assert.Equal(t, conformance.Warn, result(t, rep, "start.time").Status)
}

// What a runtime writes is shown escaped, capped, and only the part its
// check's instance wrote while the check ran.
func TestOutputIsTheChecksEscapedAndCapped(t *testing.T) {
	rep := run(t, "escape", func(c *conformance.Config) { c.Run = []string{"echo.json"} })
	r := result(t, rep, "echo.json")
	require.Equal(t, conformance.Fail, r.Status)
	total := 0
	for _, l := range r.Output {
		total += len(l.Text)
	}
	assert.LessOrEqual(t, len(r.Output), 20)
	assert.LessOrEqual(t, total, 4<<10)
	var text, js bytes.Buffer
	require.NoError(t, printer.Text{}.Write(&text, rep))
	assert.NotContains(t, text.String(), "\x1b[2J", "escape sequences never reach the terminal")
	assert.Contains(t, text.String(), `\x1b[2J`)
	require.NoError(t, printer.JSON(&js, rep))
	assert.Less(t, js.Len(), 32<<10, "one failure does not make a huge report")
}

// Every reproduce line works as printed: start the runtime as the report
// says, run the line, and the failure shows again.
func TestReproduceLinesWork(t *testing.T) {
	rep := run(t, "bytes", func(c *conformance.Config) {
		c.Run = []string{"echo.bytes"}
		c.ArtifactDir = t.TempDir()
	})
	r := result(t, rep, "echo.bytes")
	require.Equal(t, conformance.Fail, r.Status)
	got := reproduce(t, rep, r)
	assert.True(t, bytes.HasPrefix(got, []byte{0xff}), "the echo came back")
	assert.True(t, bytes.HasSuffix(got, []byte{'\n'}), "with the fake's extra newline: the failure reproduced")
}

// reproduce starts the runtime as the report's start line says and runs
// the result's reproduce line, as printed but for the port; it returns
// what the line wrote.
func reproduce(t *testing.T, rep *conformance.Report, r conformance.Result) []byte {
	t.Helper()
	require.NotEmpty(t, r.Repro)
	require.NotEmpty(t, rep.Runtime.StartByHand)
	bin := t.TempDir()
	require.NoError(t, os.Symlink(oeRT, filepath.Join(bin, "oe-rt")))
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	// The lines name the conventional port; this test moves them to a free
	// one, as a user would where 50051 is taken.
	addr, err := launch.FreePort()
	require.NoError(t, err)
	startByHand := strings.ReplaceAll(rep.Runtime.StartByHand, conformance.ReproAddress, addr)
	repro := strings.ReplaceAll(r.Repro, conformance.ReproAddress, addr)
	require.NotEqual(t, rep.Runtime.StartByHand, startByHand, "the start line names %s", conformance.ReproAddress)
	require.NotEqual(t, r.Repro, repro, "the reproduce line names %s", conformance.ReproAddress)
	srv := exec.Command("sh", "-c", startByHand)
	srv.Env = env
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, srv.Start())
	defer func() { _ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); _ = srv.Wait() }()
	var got bytes.Buffer
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got.Reset()
		call := exec.Command("sh", "-c", repro)
		call.Env = env
		call.Stdout = &got
		if err = call.Run(); err == nil {
			break
		}
	}
	require.NoError(t, err, "%s", repro)
	return got.Bytes()
}

// vmHWM reads a process's peak resident set, in bytes (0 when gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// When the harness itself fails (here: too few file descriptors to start
// the shutdown instance), the checks it could not run are errors, never
// skips that let the run pass: the verdict is ERROR and the exit status 2.
func TestHarnessFailureIsAnError(t *testing.T) {
	cmd := exec.Command("sh", "-c", "ulimit -n 24 && exec \"$0\" conform", oeRT)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 2, ee.ExitCode(), "%s", out)
	assert.NotRegexp(t, `(?m)^PASSED`, string(out))
	assert.Regexp(t, `(?m)^(ERROR|FAILED)`, string(out))
	assert.Contains(t, string(out), "too many open files")
	assertNoChildren(t)
}

// A descendant that keeps the runtime's stderr open does not add to the
// runtime's shutdown time: with a 5 s grace period (the holder sleeps 30 s;
// the 1 s drain call in flight must fit, on a busy machine too) the runtime
// that exits after SIGTERM passes, and the holder is reported as an orphan.
func TestStderrHolderDoesNotDelayShutdown(t *testing.T) {
	rep := run(t, "stderr-holder", func(c *conformance.Config) {
		c.Grace = 5 * time.Second
		c.Run = []string{"shutdown.*"}
	})
	s := result(t, rep, "shutdown.sigterm")
	assert.Equal(t, conformance.Pass, s.Status, s.Message)
	o := result(t, rep, "shutdown.no-orphans")
	assert.Equal(t, conformance.Fail, o.Status)
	assert.Contains(t, o.Message, "under the master, pid")
	assert.Contains(t, o.Message, "sleep 30")
}

// A runtime that the machine keeps waiting for a CPU is not hung: its JSON
// echo costs 300 ms of CPU, on a CPU it shares with 16 busy loops (seconds
// of the wall clock, past the call's 3 s), and echo.json passes, the call
// answered. A runtime that does not answer on an idle CPU is still given
// up on at its timeout (TestVerdictHangAfter10 and the other hang tests).
func TestStarvedRuntimeIsNotHung(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("no taskset here to share one CPU with busy loops")
	}
	var hogs []*exec.Cmd
	stopHogs := func() {
		for _, h := range hogs {
			_ = h.Process.Kill()
			_ = h.Wait()
		}
		hogs = nil
	}
	defer stopHogs()
	for range 16 {
		hog := exec.Command(taskset, "-c", "0", "sh", "-c", "while :; do :; done")
		require.NoError(t, hog.Start())
		hogs = append(hogs, hog)
	}
	self := fakeBin
	cfg := config(t, "starved-json")
	cfg.Command = []string{taskset, "-c", "0", self}
	// The budget (start timeout + grace + slack) must hold the reference's
	// calibration and a start on the starved CPU, on a machine that is busy
	// besides.
	cfg.StartTimeout = 60 * time.Second
	cfg.Run = []string{"echo.json"}
	start := time.Now()
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := result(t, rep, "echo.json")
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	t.Logf("the starved echo took %s of the wall clock; the run %s", r.Duration, time.Since(start))
	assert.Greater(t, r.Duration, 3*time.Second, "the echo was kept waiting past its timeout: this test shows patience only then")
	stopHogs()
	assertNoChildren(t)
}
