package launch

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHexAddr(t *testing.T) {
	a, err := parseHexAddr("0100007F:1F90")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", a)
	a, err = parseHexAddr("00000000000000000000000000000000:0050")
	require.NoError(t, err)
	assert.Equal(t, "[::]:80", a)
}

// A program that ignores SIGTERM and leaves a setsid grandchild behind is
// ended entirely by Stop; its listener is seen while it runs.
func TestStopEndsEverything(t *testing.T) {
	script := `trap '' TERM; setsid sleep 60 & exec /usr/bin/python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); time.sleep(60)"`
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		script = `trap '' TERM; setsid sleep 60 & sleep 60`
	}
	p := start(t, Spec{Path: "sh", Args: []string{"-c", script}})
	if strings.Contains(script, "python3") {
		var addrs []string
		assert.Eventually(t, func() bool {
			var pids []int
			for _, pr := range Tree(p.Pid) {
				pids = append(pids, pr.Pid)
			}
			addrs, _ = Listeners(pids)
			return len(addrs) > 0
		}, 10*time.Second, 20*time.Millisecond)
		if assert.Len(t, addrs, 1) {
			host, _, _ := net.SplitHostPort(addrs[0])
			assert.Equal(t, "127.0.0.1", host)
		}
	}
	assert.False(t, p.Stop(500*time.Millisecond), "a program that ignores SIGTERM is not a graceful stop")
	e, ok := p.ExitStatus()
	require.True(t, ok)
	assert.Equal(t, syscall.SIGKILL, e.Signal)
	assert.Empty(t, p.Survivors())
	assert.Empty(t, Marked(CookieEnv+"="+p.cookie), "no process carries the marker any more")
}

// Terminate is the master's stop: SIGTERM to the PID only. A launcher
// script that exits on SIGTERM without passing it on leaves its server
// running: Terminate calls that graceful, touches the server, and
// Survivors names it; Cleanup ends it and says so.
func TestTerminateTouchesNoDescendant(t *testing.T) {
	tok := uniqueSleep()
	p := start(t, Spec{Path: "sh", Args: []string{"-c", `trap "exit 0" TERM; sleep ` + tok + ` & wait`}})
	require.Eventually(t, func() bool { return len(aliveWith(tok)) == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.True(t, p.Terminate(5*time.Second), "the script exits by itself on SIGTERM")
	e, _ := p.ExitStatus()
	assert.Equal(t, "exit status 0", e.String())
	server := aliveWith(tok)
	require.Len(t, server, 1, "the server was not signalled")
	surv := p.Survivors()
	assert.Equal(t, []string{"sleep " + tok}, cmdlines(surv))
	killed := p.Cleanup()
	assert.Equal(t, []string{"sleep " + tok}, cmdlines(killed))
	assert.False(t, Alive(server[0].Pid, server[0].Start))
}

// A stopped runtime and its stopped children are seen as stopped, and
// still killed within the bound, by Stop, Kill and Cleanup called
// together and twice.
func TestStoppedRuntimeIsKilled(t *testing.T) {
	p := start(t, Spec{Path: "sh", Args: []string{"-c", `trap '' TERM; sleep 300 & kill -STOP $!; kill -STOP $$; sleep 300`}})
	require.Eventually(t, p.Stopped, 10*time.Second, 5*time.Millisecond)
	var child Proc
	require.Eventually(t, func() bool {
		s := p.Survivors()
		if len(s) == 1 && s[0].State == 'T' {
			child = s[0]
			return true
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	var wg sync.WaitGroup
	var killed [3][]Proc // Stop and Kill clean up too: any of them may kill the child
	took := within(t, stopBound+time.Second, "Stop, Kill and Cleanup together", func() {
		wg.Add(4)
		go func() { defer wg.Done(); assert.False(t, p.Stop(100*time.Millisecond)) }()
		go func() { defer wg.Done(); p.Kill() }()
		go func() { defer wg.Done(); killed[0] = p.Cleanup() }()
		go func() { defer wg.Done(); killed[1] = p.Cleanup() }()
		wg.Wait()
		killed[2] = p.Cleanup()
	})
	t.Logf("took %s", took)
	assert.False(t, p.Stopped())
	assert.False(t, Alive(child.Pid, child.Start), "the stopped child is dead")
	assert.Empty(t, killed[2], "a Cleanup after the others finds nothing")
	e, _ := p.ExitStatus()
	assert.Equal(t, "killed by SIGKILL", e.String())
}

// Done fires when the runtime exits although a background child holds its
// stdout and stderr, with what the runtime wrote before it exited already
// read; what the child writes later (1 s after the shell is reaped, so
// that a busy machine cannot put it first) is still read, until Cleanup
// ends it.
func TestDoneDoesNotWaitForPipes(t *testing.T) {
	tok := uniqueSleep()
	p := start(t, Spec{Path: "sh", Args: []string{"-c", `(while kill -0 $$ 2>/dev/null; do sleep 0.05; done; sleep 1; echo late >&2; exec sleep ` + tok + `) & head -c 50000 /dev/zero | tr '\0' y; echo; echo crashed >&2; exit 3`}})
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not fire")
	}
	assert.Equal(t, "crashed\n", p.Stderr(), "what the runtime wrote is read when Done fires")
	assert.Equal(t, 50001, len(p.Stdout()))
	e, _ := p.ExitStatus()
	assert.Equal(t, "exit status 3", e.String())
	assert.NotEmpty(t, p.Survivors(), "the holder of the pipes is still alive: Done did not wait for it")
	require.Eventually(t, func() bool { return strings.Contains(p.Stderr(), "late") }, 10*time.Second, 5*time.Millisecond)
	ls := p.Lines(e.At, time.Time{})
	require.NotEmpty(t, ls)
	assert.Equal(t, "stderr:late", texts(ls)[len(ls)-1], "the exit is stamped before the late line")
	killed := within(t, stopBound, "Cleanup", func() { p.Cleanup() })
	t.Logf("Cleanup took %s", killed)
	assert.Empty(t, aliveWith(tok))
}

// Lines returns what both streams wrote in a window, in order; a long line
// without a newline is cut. Each stream has a reader of its own, which
// stamps a line after its read returns: lines of two streams are in order
// when they were written apart (0.2 s here), not when written a moment
// apart (CI once saw "after" stamped before the long line, written just
// before it, whose reader the race detector and a busy machine had held).
func TestLinesOfBothStreams(t *testing.T) {
	p := start(t, Spec{Path: "sh", Args: []string{"-c", `echo one; sleep 0.2; echo two >&2; sleep 0.2; printf thr; sleep 0.2; echo ee; head -c 65536 /dev/zero | tr '\0' x; echo; sleep 0.2; echo after >&2`}})
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit")
	}
	p.Cleanup()
	all := p.Lines(time.Time{}, time.Time{})
	require.Equal(t, []string{"stdout:one", "stderr:two", "stdout:three", "stdout:" + strings.Repeat("x", MaxLineBytes), "stderr:after"}, texts(all))
	assert.True(t, all[3].Cut)
	two := p.Lines(all[1].At, all[1].At)
	assert.Equal(t, []string{"stderr:two"}, texts(two))
	assert.Equal(t, []string{"stdout:three"}, texts(p.Lines(all[2].At.Add(-time.Millisecond), all[2].At.Add(100*time.Millisecond))), "a line is stamped when its first byte came")
	o, e := p.OutputBytes()
	assert.Equal(t, int64(4+6+65536+1), o)
	assert.Equal(t, int64(4+6), e)
}

// The exit names the signal, and a core dump where the machine makes one.
func TestExitOfRealPrograms(t *testing.T) {
	for script, want := range map[string]string{
		"exit 3":                "exit status 3",
		"kill -TERM $$":         "terminated by SIGTERM (default action)",
		"kill -KILL $$":         "killed by SIGKILL",
		"kill -SEGV $$":         "killed by SIGSEGV",
		"kill -STOP $$; exit 4": "exit status 4",
	} {
		t.Run(script, func(t *testing.T) {
			dir := t.TempDir()
			p := start(t, Spec{Path: "sh", Args: []string{"-c", "ulimit -c unlimited 2>/dev/null; " + script}, Dir: dir})
			if strings.Contains(script, "STOP") {
				require.Eventually(t, p.Stopped, 10*time.Second, 5*time.Millisecond)
				require.NoError(t, p.Signal(syscall.SIGCONT))
			}
			<-p.Done()
			e, _ := p.ExitStatus()
			if e.Core {
				want += " (core dumped)"
			}
			assert.Equal(t, want, e.String())
			assert.False(t, p.Stopped())
			assert.ErrorIs(t, p.Signal(syscall.SIGKILL), os.ErrProcessDone)
		})
	}
}

// The program sees Argv0 as argv[0].
func TestArgv0(t *testing.T) {
	p := start(t, Spec{Path: "cat", Argv0: "function-gort.gort-echo.1", Args: []string{"/proc/self/cmdline"}})
	<-p.Done()
	assert.Equal(t, "function-gort.gort-echo.1\x00/proc/self/cmdline\x00", p.Stdout())
}

// A program that cannot be started gives a StartError (ErrStart) that
// names the cause.
func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		return p
	}
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"empty", Spec{}, "no program given"},
		{"no such name", Spec{Path: "no-such-program-oe-rt"}, `no executable named "no-such-program-oe-rt" in PATH`},
		{"no such file", Spec{Path: filepath.Join(dir, "missing")}, "no such file"},
		{"not executable", Spec{Path: write("plain", "#!/bin/sh\n", 0o644)}, "not executable (mode -rw-r--r--; chmod +x"},
		{"directory", Spec{Path: dir}, "is a directory, not a program"},
		{"bad interpreter", Spec{Path: write("x.sh", "#!/usr/bin/pythonX\nprint(1)\n", 0o755)}, "bad interpreter /usr/bin/pythonX (named in the #! line of " + filepath.Join(dir, "x.sh") + "): no such file"},
		{"crlf", Spec{Path: write("crlf.sh", "#!/bin/sh\r\necho hi\r\n", 0o755)}, "ends in CRLF (Windows line endings)"},
		{"env name missing", Spec{Path: write("env.sh", "#!/usr/bin/env python9\n", 0o755), Env: []string{"PATH=/usr/bin:/bin"}}, `runs "/usr/bin/env python9", and there is no python9 in the program's PATH (/usr/bin:/bin)`},
		{"not a program", Spec{Path: write("data", "just text\n", 0o755)}, "not a program this machine can run (no #! line"},
		{"bom", Spec{Path: write("bom.sh", "\xef\xbb\xbf#!/bin/sh\n", 0o755)}, "byte-order mark"},
		{"no working directory", Spec{Path: "true", Dir: filepath.Join(dir, "nodir")}, "working directory " + filepath.Join(dir, "nodir") + ": no such directory"},
		{"working directory is a file", Spec{Path: "true", Dir: write("file", "", 0o644)}, "working directory " + filepath.Join(dir, "file") + ": not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Start(c.spec)
			if p != nil {
				p.Kill()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrStart)
			var se *StartError
			require.True(t, errors.As(err, &se))
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "start "), err.Error())
		})
	}
	assertNoChildren(t)
}

// A relative path is relative to the launcher's directory, not to Dir.
func TestRelativePathIsTheLaunchersOwn(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile("rt.sh", []byte("#!/bin/sh\npwd\n"), 0o755))
	other := t.TempDir()
	p := start(t, Spec{Path: "./rt.sh", Dir: other})
	<-p.Done()
	e, _ := p.ExitStatus()
	assert.Equal(t, "exit status 0", e.String(), p.Stderr())
	assert.Equal(t, other+"\n", p.Stdout())
}

// The sampler measures the program and its descendants.
func TestUsage(t *testing.T) {
	p := start(t, Spec{Path: "sh", Args: []string{"-c", "sleep 300 & sleep 300"}})
	require.Eventually(t, func() bool { return len(Tree(p.Pid)) == 3 }, 10*time.Second, 5*time.Millisecond)
	p.Sample()
	u := p.Usage()
	assert.GreaterOrEqual(t, u.Samples, 1)
	assert.GreaterOrEqual(t, u.PeakThreads, 3)
	assert.Greater(t, u.PeakRSS, int64(0))
	assert.Contains(t, p.Tracking(), "guarded")
}

// The guard goes with the last launch.
func TestGuardEndsWithTheLastLaunch(t *testing.T) {
	a := start(t, Spec{Path: "sleep", Args: []string{"300"}})
	b := start(t, Spec{Path: "sleep", Args: []string{"300"}})
	guard := &theHost.Load().guard
	guard.Lock()
	g := guard.proc
	guard.Unlock()
	require.NotNil(t, g, a.Tracking())
	gst, err := readStat(g.Pid)
	require.NoError(t, err)
	a.Kill()
	assert.True(t, Alive(g.Pid, gst.Start), "the guard stays while a launch is live")
	b.Kill()
	assert.False(t, Exists(g.Pid, gst.Start), "the guard is gone and reaped")
	assertNoChildren(t)
}

// The manual states the bounds the code keeps.
func TestDocStatesTheBounds(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	doc := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "//", "")), " ")
	for _, d := range []time.Duration{killWait, cleanupBound, pipeLinger, time.Second, guardExit} {
		assert.Contains(t, doc, d.String(), "doc.go does not state the bound %s", d)
	}
	assert.Contains(t, doc, trackingEnv+"=v2|v1|none")
	assert.Contains(t, doc, guardEnv)
}

// The environment is Spec.Env, later entries winning, less the guard's
// variable, plus the marker — added to an inherited one.
func TestEnvironment(t *testing.T) {
	assert.Equal(t, []string{"A=2", "B=1", CookieEnv + "=tok"}, environment([]string{"A=1", "B=1", guardEnv + "=" + guardMagic, "A=2"}, "tok"))
	assert.Equal(t, []string{"PATH=/bin", CookieEnv + "=outer,tok"}, environment([]string{CookieEnv + "=outer", "PATH=/bin"}, "tok"))
}

// With Spec.CgroupFD (a cgroup v2 with limits, as conform makes one), the
// tracking cgroup is made inside it, so the limits apply, and removed by
// Cleanup.
func TestTrackingInsideTheGivenCgroup(t *testing.T) {
	own := theHost.Load().cgroups.hierarchies().v2.own
	if own == "" {
		t.Skip("no cgroup v2 here")
	}
	dir := filepath.Join(own, "oe-rt-launch-test-"+uniqueSleep())
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup v2 here: %v", err)
	}
	defer os.Remove(dir)
	f, err := os.Open(dir)
	require.NoError(t, err)
	defer f.Close()
	t.Setenv(trackingEnv, "")
	p := start(t, Spec{Path: "sleep", Args: []string{"300"}, CgroupFD: int(f.Fd())})
	assert.Contains(t, p.Tracking(), "tracking cgroup v2 "+dir+"/oe-rt-launch.")
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/cgroup")
	require.NoError(t, err)
	assert.Contains(t, string(b), "0::"+theHost.Load().cgroups.hierarchies().v2.rel(dir)+"/oe-rt-launch.")
	p.Kill()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, e.IsDir(), "the tracking cgroup %s is left", e.Name())
	}
}

// A guard that dies while launches are live is replaced and told of them:
// a launcher killed afterwards still leaves nothing.
func TestGuardIsReplaced(t *testing.T) {
	p := start(t, Spec{Path: "sleep", Args: []string{"300"}})
	guard := &theHost.Load().guard
	guard.Lock()
	g := guard.proc
	guard.Unlock()
	require.NotNil(t, g)
	require.NoError(t, g.Kill())
	var g2 *os.Process
	require.Eventually(t, func() bool {
		guard.Lock()
		defer guard.Unlock()
		g2 = guard.proc
		return g2 != nil && g2 != g
	}, 10*time.Second, 5*time.Millisecond, "no new guard")
	// The new guard knows the launch: closing its pipe, as this process's
	// death would, ends the program.
	guard.Lock()
	guard.w.Close()
	guard.Unlock()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the new guard did not end the launch")
	}
	e, _ := p.ExitStatus()
	assert.Equal(t, "killed by SIGKILL", e.String())
}

// The guard rebuilds each cgroup of a launch from the line it is told, as
// the same kind of manager with the same directories: what it kills and
// removes when this process dies is what the launch made.
func TestGuardLinesRebuildTheCgroups(t *testing.T) {
	p := &Process{cookie: "tok"}
	p.sys.track = &v2Cgroups{cgroupDir: cgroupDir{dir: "/sys/fs/cgroup/a b/oe-rt-launch.1.1", rel: "/a b/oe-rt-launch.1.1", fd: -1}}
	p.sys.lim = &v1Cgroups{dirs: []v1Dir{
		{ctrl: "memory", cgroupDir: cgroupDir{dir: "/sys/fs/cgroup/memory/oe-rt-launch.1.2", rel: "/oe-rt-launch.1.2", fd: -1}},
		{ctrl: "pids", cgroupDir: cgroupDir{dir: "/sys/fs/cgroup/pids/oe-rt-launch.1.2", rel: "/oe-rt-launch.1.2", fd: -1}},
	}, limits: &limitCounters{}}
	var got []cgroupPath
	for _, l := range strings.Split(strings.TrimSpace(launchLine(p)), "\n") {
		f := guardFields(l)
		require.Len(t, f, 5, l)
		m := parseCgroup(f[2], f[3], f[4])
		require.NotNil(t, m, l)
		got = append(got, m.Paths()...)
	}
	want := append(p.sys.track.Paths(), p.sys.lim.Paths()...)
	assert.Equal(t, want, got)
	assert.Equal(t, 2, parseCgroup("v2", `"/x"`, `"/x"`).Version())
	assert.Equal(t, 1, parseCgroup("v1:memory", `"/x"`, `"/x"`).Version())

	// A launch without a tracking cgroup says "-", which is none.
	p.sys.track = nil
	f := guardFields(strings.SplitN(launchLine(p), "\n", 2)[0])
	assert.Nil(t, parseCgroup(f[2], f[3], f[4]))
}

// A zombie of the peak's sample counts once samples have seen it a zombie
// for ZombieAge; one reaped before that, a recycled PID, or a zombie of
// another sample does not.
func TestZombieWatch(t *testing.T) {
	t0 := time.Now()
	z := Proc{Pid: 7, State: 'Z', Start: 100}
	live := Proc{Pid: 8, State: 'S', Start: 100}
	var w ZombieWatch
	assert.Equal(t, 0, w.Sample([]Proc{z, live}, t0, true), "first seen now")
	assert.Equal(t, 0, w.Sample([]Proc{z, live}, t0.Add(ZombieAge/2), false), "a zombie for half of ZombieAge")
	assert.Equal(t, 1, w.Sample([]Proc{z, live}, t0.Add(ZombieAge), false), "a zombie for ZombieAge")
	assert.Equal(t, 1, w.Sample(nil, t0.Add(2*ZombieAge), false), "reaped late: it was a zombie not waited for at the peak")
	var v ZombieWatch
	v.Sample([]Proc{z, live}, t0, true)
	recycled := Proc{Pid: 7, State: 'Z', Start: 200}
	assert.Equal(t, 0, v.Sample([]Proc{recycled}, t0.Add(2*ZombieAge), false), "the same PID, another process")
	other := Proc{Pid: 9, State: 'Z', Start: 100}
	v.Sample([]Proc{other}, t0.Add(2*ZombieAge), false)
	assert.Equal(t, 0, v.Sample([]Proc{other}, t0.Add(4*ZombieAge), false), "not a zombie of the peak's sample")
	assert.Equal(t, 0, v.Sample([]Proc{z}, t0.Add(5*ZombieAge), false), "seen anew after a sample without it")
}

// A shell that runs $(...) in a loop has a child that has just exited (a
// zombie until the shell's wait returns) in many samples, and is still
// no program that leaves zombies; one that never waits is (its children
// are orphans of a parent that ignores them until it exits).
func TestZombiesAtPeakAreNotWaitedFor(t *testing.T) {
	p := start(t, Spec{Path: "sh", Args: []string{"-c", `end=$(($(date +%s) + 3)); while [ "$(date +%s)" -lt "$end" ]; do x=$(true); done`}})
	<-p.Done()
	u := p.Usage()
	require.Positive(t, u.Samples)
	assert.Zero(t, u.ZombiesAtPeak, "zombies of a moment, each reaped by the shell: %+v", u)
	p.Cleanup()
	// exec replaces the shell by sleep, which never waits: its three
	// children, forked before, stay zombies until it exits.
	q := start(t, Spec{Path: "sh", Args: []string{"-c", `true & true & true & exec sleep 3`}})
	<-q.Done()
	u = q.Usage()
	assert.Equal(t, 3, u.ZombiesAtPeak, "%+v", u)
}
