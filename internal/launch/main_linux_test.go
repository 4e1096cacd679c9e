package launch

// The test binary doubles as the hostile programs the launcher is tested
// against: with OE_RT_LAUNCH_TEST_MODE set it becomes one of them (the way
// go-plugin's tests re-execute themselves), before the tests run.

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	ossignal "os/signal"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const modeEnv = "OE_RT_LAUNCH_TEST_MODE"

func TestMain(m *testing.M) {
	Init()
	if mode := os.Getenv(modeEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	_ = EnableSubreaper()
	os.Exit(m.Run())
}

func helperMain(mode string) int {
	switch mode {
	case "join-our-group":
		// Leave the group the launcher made, for the launcher's own.
		if err := unix.Setpgid(0, must(unix.Getpgid(unix.Getppid()))); err != nil {
			fmt.Fprintln(os.Stderr, "setpgid:", err)
			return 3
		}
		// Ignored signals stay ignored across exec.
		ossignal.Ignore(syscall.SIGTERM)
		return execSleep()
	case "join-child-group":
		// Make a child lead a new group, and join it.
		c := exec.Command("sleep", os.Getenv("SLEEP"))
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		if err := unix.Setpgid(0, c.Process.Pid); err != nil {
			fmt.Fprintln(os.Stderr, "setpgid:", err)
			return 3
		}
		// Ignored signals stay ignored across exec.
		ossignal.Ignore(syscall.SIGTERM)
		return execSleep()
	case "launcher":
		return launcherMain()
	case "launcher-limits":
		return limitedLauncherMain()
	case "alloc":
		// Touch memory a MiB at a time, up to $MIB MiB, then wait.
		n, _ := strconv.Atoi(os.Getenv("MIB"))
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep))
		time.Sleep(time.Minute)
		return 0
	case "threads":
		// Start $THREADS OS threads, then wait.
		n, _ := strconv.Atoi(os.Getenv("THREADS"))
		for i := 0; i < n; i++ {
			go func() { runtime.LockOSThread(); time.Sleep(time.Hour) }()
		}
		time.Sleep(500 * time.Millisecond)
		fmt.Println("started", n)
		time.Sleep(time.Minute)
		return 0
	case "pidns":
		return pidnsMain()
	}
	fmt.Fprintln(os.Stderr, "unknown mode", mode)
	return 2
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func execSleep() int {
	p := must(exec.LookPath("sleep"))
	err := syscall.Exec(p, []string{"sleep", os.Getenv("SLEEP")}, os.Environ())
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 3
}

// launcherMain is a program using the launcher that is killed with
// SIGKILL: it starts a runtime and a script that leaves a setsid
// grandchild and an orphan without its environment, prints every process
// it started or found ("pid start"), then "ready", and waits to be killed.
func launcherMain() int {
	_ = EnableSubreaper()
	tok := os.Getenv("SLEEP")
	a, err := Start(Spec{Path: "sleep", Args: []string{tok}, Env: os.Environ()})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	b, err := Start(Spec{Path: "sh", Args: []string{"-c", "setsid sleep " + tok + " & env -i setsid -f sleep " + tok + "; exec sleep " + tok}, Env: os.Environ()})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	// Until both runtimes and both of b's orphans run sleep (not a shell
	// or env before its exec), and b's sampler knows them.
	deadline := time.Now().Add(10 * time.Second)
	for (len(aliveWith(tok)) < 4 || len(b.Survivors()) < 2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range []*Process{a, b} {
		fmt.Println(p.Pid, p.sys.startTicks, p.Tracking())
		for _, s := range p.Survivors() {
			fmt.Println(s.Pid, s.Start, s.Cmdline)
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	return 0
}

// uniqueSleep is a sleep argument no other process on the machine has, to
// tell this test's processes apart: "300" followed by random digits.
func uniqueSleep() string { return "300" + strconv.Itoa(100000+rand.IntN(900000)) }

// aliveWith lists the live processes whose command line is "sleep tok".
func aliveWith(tok string) []Proc {
	var out []Proc
	for _, p := range All() {
		if p.State != 'Z' && p.State != 'X' && cmdline(p.Pid) == "sleep "+tok {
			p.Cmdline = cmdline(p.Pid)
			out = append(out, p)
		}
	}
	return out
}

// within runs f and fails the test if it does not return within bound (it
// is then left running: the test has failed anyway).
func within(t *testing.T, bound time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%s did not return within %s", what, bound)
	}
	return time.Since(start)
}

// assertNoChildren fails when a child of the test process is alive (the
// guard included: it must be gone once every launch is cleaned up).
func assertNoChildren(t *testing.T) {
	t.Helper()
	var alive []string
	for _, c := range children(os.Getpid()) {
		if st, err := readStat(c); err == nil && st.State != 'Z' {
			alive = append(alive, fmt.Sprintf("%d (%s)", c, cmdline(c)))
		}
	}
	assert.Empty(t, alive, "children of the test process still alive")
}

// start starts spec and registers a Cleanup check that nothing is left.
func start(t *testing.T, spec Spec) *Process {
	t.Helper()
	if spec.Env == nil {
		spec.Env = os.Environ()
	}
	p, err := Start(spec)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Cleanup()
		assert.Empty(t, p.Survivors())
		assertNoChildren(t)
	})
	return p
}

// helper starts the test binary in a helper mode.
func helper(t *testing.T, mode string, env ...string) *Process {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	env = append(os.Environ(), append([]string{modeEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, env...)...)
	return start(t, Spec{Path: self, Env: env})
}

// readLines reads the lines of r until "ready" or EOF.
func readUntilReady(sc *bufio.Scanner) (lines []string) {
	for sc.Scan() {
		if sc.Text() == "ready" {
			return lines
		}
		lines = append(lines, sc.Text())
	}
	return lines
}
