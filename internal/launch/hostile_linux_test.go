package launch

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stopBound is what Stop, Kill or Cleanup may take at most, whatever the
// processes do (grace aside).
const stopBound = killWait + cleanupBound + pipeLinger + time.Second

// tracked runs f once per kind of tracking this machine offers: the
// automatic choice, cgroup v1 where writable, and none (the marker, the
// sampled tree and the start-time window for orphans).
func tracked(t *testing.T, f func(t *testing.T)) {
	for _, mode := range []string{"", "v1", "none"} {
		name := mode
		if name == "" {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) {
			t.Setenv(trackingEnv, mode)
			if mode == "v1" {
				if cg, note := theHost.Load().cgroups.newTracking(0, false); cg == nil {
					t.Skip("no cgroup v1 here: " + note)
				} else {
					_ = cg.Destroy(time.Now())
				}
			}
			f(t)
		})
	}
}

// A runtime that leaves the process group the launcher made — for the
// launcher's own group, or for a group its child leads — is stopped,
// killed and cleaned up within the bound, and nothing is left. The
// launcher never signals its own group (the hostile process is in it).
func TestRuntimeThatLeavesItsGroup(t *testing.T) {
	for _, mode := range []string{"join-our-group", "join-child-group"} {
		for _, how := range []string{"Stop", "Kill", "Cleanup"} {
			t.Run(mode+"/"+how, func(t *testing.T) {
				tok := uniqueSleep()
				p := helper(t, mode, "SLEEP="+tok)
				require.Eventually(t, func() bool {
					n := 0
					for _, q := range aliveWith(tok) {
						if q.pgid != p.Pid {
							n++
						}
					}
					return n == map[string]int{"join-our-group": 1, "join-child-group": 2}[mode]
				}, 10*time.Second, 10*time.Millisecond, "the helper did not leave its group")
				took := within(t, stopBound+time.Second, how, func() {
					switch how {
					case "Stop":
						assert.False(t, p.Stop(200*time.Millisecond), "it ignores SIGTERM")
					case "Kill":
						p.Kill()
					case "Cleanup":
						p.Cleanup()
					}
				})
				t.Logf("%s took %s", how, took)
				assert.True(t, p.Exited())
				assert.Empty(t, aliveWith(tok))
				assert.Empty(t, p.Survivors())
			})
		}
	}
}

// An orphan that drops the environment and leaves the session (env -i
// setsid -f) is found without the marker, reported by Survivors with its
// command line, and ended by Cleanup — with each kind of tracking.
func TestOrphanWithoutEnvironment(t *testing.T) {
	tracked(t, func(t *testing.T) {
		tok := uniqueSleep()
		p := start(t, Spec{Path: "sh", Args: []string{"-c", "env -i setsid -f sleep " + tok + "; exec sleep 300"}})
		t.Log(p.Tracking())
		var orphan Proc
		require.Eventually(t, func() bool {
			for _, q := range p.Survivors() {
				if q.Cmdline == "sleep "+tok {
					orphan = q
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond, "the orphan is not among the survivors")
		assert.False(t, hasToken(orphan.Pid, p.cookie), "the orphan has no marker")
		var killed []Proc
		within(t, stopBound, "Cleanup", func() { killed = p.Cleanup() })
		assert.Contains(t, cmdlines(killed), "sleep "+tok)
		assert.False(t, Alive(orphan.Pid, orphan.Start))
		assert.Empty(t, aliveWith(tok))
		assert.Empty(t, p.Cleanup(), "a second Cleanup finds nothing")
	})
}

func cmdlines(ps []Proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Cmdline)
	}
	return out
}

// A program using the launcher is killed with SIGKILL: its runtime (the
// parent-death signal), the setsid grandchild and the orphan without
// environment (the guard) are all gone within a bound, and so is the
// guard.
func TestNothingOutlivesAKilledLauncher(t *testing.T) {
	tracked(t, func(t *testing.T) {
		tok := uniqueSleep()
		// The launcher under test is started by this test's own launcher,
		// whose Survivors see all it started: its tracking cgroup nests,
		// its marker is inherited, orphans come back to this subreaper.
		outer := helper(t, "launcher", "SLEEP="+tok)
		require.Eventually(t, func() bool {
			return strings.Contains(outer.Stdout(), "ready\n") || outer.Exited()
		}, 20*time.Second, 10*time.Millisecond)
		out := outer.Stdout()
		require.Contains(t, out, "ready\n", "stderr: %s", outer.Stderr())
		var started []Proc
		for _, l := range strings.Split(strings.TrimSuffix(out, "ready\n"), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			pid, _ := strconv.Atoi(f[0])
			st, _ := strconv.ParseUint(f[1], 10, 64)
			started = append(started, Proc{Pid: pid, Start: st, Cmdline: strings.Join(f[2:], " ")})
		}
		t.Logf("the launcher started or found:\n%s", out)
		require.Len(t, aliveWith(tok), 4, "two runtimes, a setsid grandchild and an orphan: %v", aliveWith(tok))
		require.GreaterOrEqual(t, len(started), 4)

		require.NoError(t, outer.Signal(syscall.SIGKILL))
		const bound = 5 * time.Second
		deadline := time.Now().Add(bound)
		for time.Now().Before(deadline) && (len(aliveWith(tok)) > 0 || len(outer.Survivors()) > 0) {
			time.Sleep(20 * time.Millisecond)
		}
		assert.Empty(t, aliveWith(tok), "processes of the killed launcher still alive after %s", bound)
		assert.Empty(t, outer.Survivors(), "its guard or something else is still alive after %s", bound)
		for _, p := range started {
			assert.False(t, Alive(p.Pid, p.Start), "pid %d (%s) is alive", p.Pid, p.Cmdline)
		}
		e, _ := outer.ExitStatus()
		assert.Equal(t, "killed by SIGKILL", e.String())
	})
}

// pidnsMain runs as PID 1 of a new PID namespace, where
// /proc/sys/kernel/ns_last_pid can hand a freed PID to a chosen process.
// A stranger receives the PID of a reaped runtime (a group leader, as the
// runtime was) and then the PID of a member of a launch that has exited;
// no entry point of the launcher may signal either.
func pidnsMain() int {
	fail := func(format string, a ...any) int {
		fmt.Printf("FAIL "+format+"\n", a...)
		return 1
	}
	// Threads take PIDs too: make the threads this process will need now,
	// so that none is made (and takes the PID meant for a stranger) later.
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(20 * time.Millisecond)
			runtime.UnlockOSThread()
		}()
	}
	wg.Wait()
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", "exit 0"}, Env: os.Environ()})
	if err != nil {
		return fail("%v", err)
	}
	<-p.Done()
	x := p.Pid
	s1, err := strangerAt(x)
	if err != nil {
		return fail("%v", err)
	}
	defer s1.end()
	if err := p.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
		return fail("Signal after the exit returned %v, want os.ErrProcessDone", err)
	}
	p.Terminate(10 * time.Millisecond)
	for _, q := range p.Survivors() {
		if q.Pid == x {
			return fail("Survivors lists the stranger %d", x)
		}
	}
	p.Kill()
	p.Cleanup()
	p.Stop(10 * time.Millisecond)
	if !Alive(s1.pid, s1.start) {
		return fail("the stranger that received the runtime's PID %d was killed", x)
	}
	fmt.Println("ok runtime pid", x)

	q, err := Start(Spec{Path: "sh", Args: []string{"-c", "sleep 0.3 & wait $!; exec sleep 300"}, Env: os.Environ()})
	if err != nil {
		return fail("%v", err)
	}
	var d int
	var dStart uint64
	for deadline := time.Now().Add(10 * time.Second); d == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		q.mu.Lock()
		for pid, st := range q.sys.known {
			d, dStart = pid, st
		}
		q.mu.Unlock()
	}
	if d == 0 {
		return fail("the sampler never saw the child")
	}
	for deadline := time.Now().Add(10 * time.Second); Exists(d, dStart) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	s2, err := strangerAt(d)
	if err != nil {
		return fail("%v", err)
	}
	defer s2.end()
	for _, m := range q.Survivors() {
		if m.Pid == d {
			return fail("Survivors lists the stranger %d that received a member's PID", d)
		}
	}
	q.Stop(10 * time.Millisecond)
	if !Alive(s2.pid, s2.start) {
		return fail("the stranger that received a member's PID %d was killed", d)
	}
	fmt.Println("ok member pid", d)
	return 0
}

// stranger is a process the launcher did not start: "setsid sleep 30"
// under a shell that waits for it.
type stranger struct {
	pid   int
	start uint64
	sh    *exec.Cmd
}

func (s stranger) end() {
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	_ = s.sh.Process.Kill()
	_ = s.sh.Wait()
}

// strangerAt starts a stranger with PID pid (free now), retrying when
// another process took it first.
func strangerAt(pid int) (stranger, error) {
	for try := 0; try < 100; try++ {
		sh := exec.Command("sh", "-c", fmt.Sprintf("echo %d > /proc/sys/kernel/ns_last_pid; setsid sleep 30 & echo $!; wait", pid-1))
		out, err := sh.StdoutPipe()
		if err != nil {
			return stranger{}, err
		}
		if err := sh.Start(); err != nil {
			return stranger{}, err
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		got, _ := strconv.Atoi(strings.TrimSpace(line))
		s := stranger{pid: got, sh: sh}
		if got == pid {
			if st, err := readStat(pid); err == nil {
				s.start = st.Start
				return s, nil
			}
		}
		s.end()
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", pid)); err == nil {
			return stranger{}, fmt.Errorf("PID %d went to a thread of this process", pid)
		}
	}
	return stranger{}, fmt.Errorf("could not hand PID %d to a stranger", pid)
}

// In a PID namespace, a stranger that receives the PID of a reaped
// runtime, or of a member of a launch, is never signalled by Signal,
// Terminate, Survivors, Kill, Cleanup or Stop.
func TestRecycledPIDIsNeverSignalled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a PID namespace needs root here")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1) to make a PID namespace")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	tracked(t, func(t *testing.T) {
		// Handing a given PID to a stranger can lose the race to another
		// fork in the namespace (a Go thread, the guard) on a loaded
		// machine: the scenario is tried again, a few times, before the
		// test gives up on setting it up.
		for attempt := 1; ; attempt++ {
			p := start(t, Spec{Path: unshare, Args: []string{"--pid", "--fork", "--mount-proc", self},
				Env: append(os.Environ(), modeEnv+"=pidns", "GORACE=atexit_sleep_ms=0")})
			select {
			case <-p.Done():
			case <-time.After(60 * time.Second):
				t.Fatalf("the PID namespace test did not end; stdout: %s", p.Stdout())
			}
			e, _ := p.ExitStatus()
			if e.Code != 0 && strings.Contains(p.Stderr(), "unshare failed") {
				t.Skipf("no PID namespace here: %s", p.Stderr())
			}
			if strings.Contains(p.Stdout(), "could not hand PID") {
				if attempt < 4 {
					// Ended now, not at the test's end: the cleanups run
					// last first, and each asserts that no child (the
					// guard of the launches still live) is left.
					p.Cleanup()
					continue
				}
				t.Skipf("could not set the scenario up in %d attempts: %s", attempt, p.Stdout())
			}
			assert.Equal(t, "exit status 0", e.String(), "stdout: %s\nstderr: %s", p.Stdout(), p.Stderr())
			assert.Contains(t, p.Stdout(), "ok runtime pid")
			assert.Contains(t, p.Stdout(), "ok member pid")
			return
		}
	})
}
