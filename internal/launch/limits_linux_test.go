package launch

import (
	"bufio"
	"fmt"
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
)

// requireLimitsEnv, when set (scripts/test.sh sets it on a machine where
// this process is root), makes a machine that cannot enforce limits fail
// the limit tests instead of skipping them, so that CI cannot pass without
// having run them.
const requireLimitsEnv = "OE_RT_TEST_REQUIRE_LIMITS"

// limited runs f once per way this machine enforces limits (cgroup v2,
// cgroup v1), each skipped with the reason where the machine cannot; with
// OE_RT_TEST_REQUIRE_LIMITS set, at least one must run.
func limited(t *testing.T, f func(t *testing.T)) {
	ran := false
	for _, mode := range []string{"v2", "v1"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv(limitsEnv, mode)
			kind, err := CheckLimits()
			if err != nil {
				t.Skipf("limits by cgroup %s are not possible here: %v", mode, err)
			}
			require.Equal(t, "cgroup "+mode, kind)
			ran = true
			f(t)
		})
	}
	if !ran && os.Getenv(requireLimitsEnv) != "" {
		t.Fatalf("%s is set, but this machine enforces limits neither by cgroup v2 nor by cgroup v1 (see the skips above)", requireLimitsEnv)
	}
}

// cgroupLines returns /proc/PID/cgroup.
func cgroupOf(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	require.NoError(t, err)
	return string(b)
}

// The program is in its limit cgroups from its first instruction: cat,
// which reads its own /proc/self/cgroup as the first thing it does, is in
// them; and a launch without limits afterwards is in none of them (the
// forking thread went back).
func TestLimitsFromTheFirstInstruction(t *testing.T) {
	limited(t, func(t *testing.T) {
		p := start(t, Spec{Path: "cat", Args: []string{"/proc/self/cgroup"}, Limits: &Limits{Memory: 64 << 20, Tasks: 30}})
		<-p.Done()
		p.Cleanup()
		require.Eventually(t, func() bool { return strings.Contains(p.Stdout(), "\n") }, 5*time.Second, 5*time.Millisecond)
		lim := p.sys.lim
		require.NotNil(t, lim)
		for _, cg := range lim.Paths() {
			assert.Contains(t, p.Stdout(), cg.rel, "cat did not start in %s:\n%s", cg.dir, p.Stdout())
			_, err := os.Stat(cg.dir)
			assert.True(t, os.IsNotExist(err), "the limit cgroup %s is left after Cleanup", cg.dir)
		}

		q := start(t, Spec{Path: "sleep", Args: []string{"300"}})
		mine := cgroupOf(t, os.Getpid())
		theirs := cgroupOf(t, q.Pid)
		for _, l := range strings.Split(mine, "\n") {
			if strings.Contains(l, "memory") || strings.Contains(l, ":pids:") {
				assert.Contains(t, theirs, l, "a launch without limits is not in this process's own cgroup")
			}
		}
		assert.NotContains(t, theirs, filepath.Base(lim.Paths()[0].dir))
		q.Kill()
	})
}

// A program that allocates past the memory limit is killed by the OOM
// killer, and the kernel's counters say so.
func TestMemoryLimitOOMKill(t *testing.T) {
	limited(t, func(t *testing.T) {
		self, err := os.Executable()
		require.NoError(t, err)
		p := start(t, Spec{Path: self, Env: append(os.Environ(), modeEnv+"=alloc", "MIB=400", "GORACE=atexit_sleep_ms=0"),
			Limits: &Limits{Memory: 48 << 20, Tasks: 100}})
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("a program that allocates 400 MiB under a 48 MiB limit still runs")
		}
		e, _ := p.ExitStatus()
		assert.Equal(t, syscall.SIGKILL, e.Signal, "%s; stdout %q", e, p.Stdout())
		st, ok := p.LimitStats()
		require.True(t, ok)
		assert.GreaterOrEqual(t, st.OOMKills, int64(1), "%+v", st)
		if st.MemoryPeak >= 0 {
			assert.InDelta(t, 48<<20, st.MemoryPeak, 4<<20, "%+v", st)
		}
		p.Cleanup()
		st, _ = p.LimitStats()
		assert.True(t, st.Final)
		assert.GreaterOrEqual(t, st.OOMKills, int64(1), "the counters outlive the cgroup: %+v", st)
	})
}

// A program that uses memory within the limit is not killed; the peak the
// kernel charged covers it, the sampler splits its RSS.
func TestMemoryWithinTheLimit(t *testing.T) {
	limited(t, func(t *testing.T) {
		// 20 MB in a shell variable: anonymous memory, no race detector.
		p := start(t, Spec{Path: "sh", Args: []string{"-c", `x=$(head -c 20000000 /dev/zero | tr '\0' a); echo ready; sleep 300`},
			Limits: &Limits{Memory: 64 << 20, Tasks: 30}})
		require.Eventually(t, func() bool { return strings.Contains(p.Stdout(), "ready") }, 20*time.Second, 10*time.Millisecond)
		p.Sample()
		st, ok := p.LimitStats()
		require.True(t, ok)
		assert.Zero(t, st.OOMKills)
		if st.MemoryPeak >= 0 {
			assert.Greater(t, st.MemoryPeak, int64(20e6), "%+v", st)
		}
		u := p.Usage()
		assert.Greater(t, u.PeakUnreclaimable, int64(19e6), "%+v", u)
		assert.Greater(t, u.AtPeak.File, int64(0), "%+v", u)
		assert.Equal(t, u.PeakRSS >= u.PeakUnreclaimable, true, "%+v", u)
		assert.False(t, u.First.IsZero() || u.Last.Before(u.First), "%+v", u)
		assert.False(t, p.Exited())
	})
}

// A program that starts more threads than pids.max allows fails, and the
// kernel's count of refused creations says why.
func TestTasksLimitRefusesThreads(t *testing.T) {
	limited(t, func(t *testing.T) {
		self, err := os.Executable()
		require.NoError(t, err)
		p := start(t, Spec{Path: self, Env: append(os.Environ(), modeEnv+"=threads", "THREADS=40", "GORACE=atexit_sleep_ms=0"),
			Limits: &Limits{Memory: 1 << 30, Tasks: 20}})
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("a program starting 40 threads under pids.max 20 still runs: %s", p.Stdout())
		}
		e, _ := p.ExitStatus()
		assert.NotEqual(t, "exit status 0", e.String())
		// Go says "failed to create new OS thread"; with cgo (the race
		// detector) "pthread_create failed: Resource temporarily unavailable".
		assert.Regexp(t, `failed to create new OS thread|pthread_create failed`, p.Stderr())
		st, _ := p.LimitStats()
		assert.GreaterOrEqual(t, st.TasksRefused, int64(1), "%+v", st)
		if st.TasksPeak >= 0 {
			assert.LessOrEqual(t, st.TasksPeak, int64(20))
		}
	})
}

// A launcher killed with SIGKILL leaves no limit cgroup: the guard removes
// them.
func TestLimitCgroupsGoWithAKilledLauncher(t *testing.T) {
	limited(t, func(t *testing.T) {
		tok := uniqueSleep()
		outer := helper(t, "launcher-limits", "SLEEP="+tok, limitsEnv+"="+os.Getenv(limitsEnv))
		require.Eventually(t, func() bool {
			return strings.Contains(outer.Stdout(), "ready\n") || outer.Exited()
		}, 20*time.Second, 10*time.Millisecond)
		var dirs []string
		sc := bufio.NewScanner(strings.NewReader(outer.Stdout()))
		for _, l := range readUntilReady(sc) {
			if d, ok := strings.CutPrefix(l, "cgroup "); ok {
				dirs = append(dirs, d)
			}
		}
		require.NotEmpty(t, dirs, "stdout %q, stderr %q", outer.Stdout(), outer.Stderr())
		for _, d := range dirs {
			require.DirExists(t, d)
		}
		require.NoError(t, outer.Signal(syscall.SIGKILL))
		assert.Eventually(t, func() bool {
			for _, d := range dirs {
				if _, err := os.Stat(d); err == nil {
					return false
				}
			}
			return len(aliveWith(tok)) == 0
		}, 5*time.Second, 20*time.Millisecond, "limit cgroups %v or the runtime outlived the killed launcher", dirs)
	})
}

// limitedLauncherMain starts a runtime with limits, prints its limit
// cgroups ("cgroup DIR"), then "ready", and waits to be killed.
func limitedLauncherMain() int {
	p, err := Start(Spec{Path: "sleep", Args: []string{os.Getenv("SLEEP")}, Env: os.Environ(), Limits: &Limits{Memory: 64 << 20, Tasks: 20}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	for _, cg := range p.sys.lim.Paths() {
		fmt.Println("cgroup", cg.dir)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	return 0
}

// Bad limits and impossible ones are refused before anything starts.
func TestLimitErrors(t *testing.T) {
	_, err := Start(Spec{Path: "true", Limits: &Limits{Memory: -1, Tasks: 20}})
	var le *LimitError
	require.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), "negative")

	t.Setenv(limitsEnv, "v3")
	_, err = Start(Spec{Path: "true", Limits: &Limits{Memory: 1 << 30}})
	require.ErrorAs(t, err, &le)
	assert.Contains(t, err.Error(), `OE_RT_LAUNCH_LIMITS="v3": want v2 or v1`)
	assertNoChildren(t)
}

// A peak between samples is not missed: a program that touches 60 MB and
// frees it before the sampler's next look still shows that peak (the
// kernel's VmHWM), while the samples saw only what was left.
func TestPeakBetweenSamples(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	p := start(t, Spec{Path: py, Args: []string{"-c", "b = b'x' * (60 << 20); del b; print('freed', flush=True); import time; time.sleep(60)"},
		SampleEvery: time.Hour})
	require.Eventually(t, func() bool { return strings.Contains(p.Stdout(), "freed") }, 20*time.Second, 10*time.Millisecond)
	p.Sample()
	u := p.Usage()
	assert.Greater(t, u.PeakRSS, int64(60<<20), "%+v", u)
	assert.Less(t, u.AtPeak.Anon+u.AtPeak.File+u.AtPeak.Shmem, int64(40<<20), "the samples saw the memory freed: %+v", u)
	assert.Less(t, u.PeakUnreclaimable, int64(40<<20), "%+v", u)
}
