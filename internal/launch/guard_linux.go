package launch

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The guard ends what this process launched when this process dies
// without cleaning up (SIGKILL, the OOM killer, a crash). The direct child
// has SIGKILL as its parent-death signal; its descendants do not, and
// those that left its tree are beyond the kernel's reach. So while a
// launch is live, a small process — this same executable, re-executed —
// reads a pipe from this process. It is told of each launch (its marker
// and tracking cgroup) before the fork, and of every member as the
// launcher sees it. When the pipe closes with launches still on it, this
// process is gone: the guard kills the cgroup's processes, the members it
// was told of (checked by start time), and every process with a launch's
// marker, removes the cgroups and exits. It runs in a process group of
// its own and ignores SIGINT, SIGTERM and SIGHUP, so that a Ctrl-C meant
// for this process does not end it first. It lives only while a launch
// is: with the last Cleanup the pipe is closed and the guard exits.

const (
	guardEnv   = "OE_RT_LAUNCH_GUARD"
	guardMagic = "v1"
	guardExit  = 2 * time.Second // for the guard to exit when told to
)

var guard struct {
	sync.Mutex
	proc   *os.Process
	w      *os.File
	exited chan struct{} // closed when the guard has exited and been reaped
	refs   int
	err    error // why the last start failed
}

// guardAdd counts a launch in and tells the guard of it (starting the
// guard if need be). It returns "" or why the launch is not guarded.
func guardAdd(p *Process) string {
	guard.Lock()
	defer guard.Unlock()
	guard.refs++
	ok := false
	if guard.proc == nil {
		ok = replaceGuard(launchLine(p)) // and tell it of launches left unguarded
	} else {
		ok = guardWrite(launchLine(p))
	}
	switch {
	case guard.proc == nil:
		return fmt.Sprintf("no guard (%v)", guard.err)
	case !ok:
		return "no guard (it could not be told)"
	}
	return ""
}

// launchLine tells the guard of a launch: "L token kind dir rel" for its
// tracking cgroup, then "X token kind dir rel" for each limit cgroup (kind
// v2, v1 — pids — or v1:memory).
func launchLine(p *Process) string {
	kind, dir, rel := "-", "", ""
	if cg := p.sys.cg; cg != nil {
		kind, dir, rel = cgroupKind(cg), cg.dir, cg.rel
	}
	line := fmt.Sprintf("L %s %s %s %s\n", p.cookie, kind, strconv.Quote(dir), strconv.Quote(rel))
	if p.sys.lim != nil {
		for _, cg := range p.sys.lim.cgs {
			line += fmt.Sprintf("X %s %s %s %s\n", p.cookie, cgroupKind(cg), strconv.Quote(cg.dir), strconv.Quote(cg.rel))
		}
	}
	return line
}

func cgroupKind(cg *cgroup) string {
	switch {
	case cg.v2:
		return "v2"
	case cg.controller() != "pids":
		return "v1:" + cg.controller()
	}
	return "v1"
}

// parseCgroup reads what cgroupKind and launchLine wrote; nil for "-".
func parseCgroup(kind, qdir, qrel string) *cgroup {
	dir, err1 := strconv.Unquote(qdir)
	rel, err2 := strconv.Unquote(qrel)
	if kind == "-" || err1 != nil || err2 != nil {
		return nil
	}
	cg := &cgroup{v2: kind == "v2", dir: dir, rel: rel, fd: -1}
	if c, ok := strings.CutPrefix(kind, "v1:"); ok {
		cg.ctrl = c
	}
	return cg
}

// guardSend tells the guard something, if there is one.
func guardSend(msg string) {
	if msg == "" {
		return
	}
	guard.Lock()
	defer guard.Unlock()
	if guard.proc != nil {
		guardWrite(msg)
	}
}

// guardForget tells the guard a launch is cleaned up, and stops the guard
// when it was the last.
func guardForget(p *Process) {
	guard.Lock()
	defer guard.Unlock()
	if guard.proc != nil {
		guardWrite("F " + p.cookie + "\n")
	}
	guard.refs--
	if guard.refs == 0 && guard.proc != nil {
		stopGuard()
	}
}

// guardWrite writes with a bound; a guard that does not read (stopped,
// dead) is replaced, and told again of every live launch.
func guardWrite(msg string) bool {
	if writeBounded(guard.w, msg) == nil {
		return true
	}
	return replaceGuard(msg)
}

// replaceGuard stops the guard, starts another, tells it of every live
// launch, then msg.
func replaceGuard(msg string) bool {
	if guard.proc != nil {
		stopGuard()
	}
	if guard.err = startGuard(); guard.err != nil {
		return false
	}
	reg.Lock()
	var all strings.Builder
	for p := range reg.live {
		all.WriteString(launchLine(p))
		p.mu.Lock()
		fmt.Fprintf(&all, "P %s %d %d\n", p.cookie, p.Pid, p.sys.startTicks)
		for pid, start := range p.sys.known {
			fmt.Fprintf(&all, "P %s %d %d\n", p.cookie, pid, start)
		}
		p.mu.Unlock()
	}
	reg.Unlock()
	return writeBounded(guard.w, all.String()+msg) == nil
}

func writeBounded(w *os.File, msg string) error {
	if w == nil {
		return os.ErrClosed
	}
	_ = w.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := io.WriteString(w, msg)
	return err
}

// startGuard starts the guard: this executable again, with guardEnv set,
// and a goroutine that reaps it and replaces it if it dies while needed.
func startGuard() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start the guard: %w", err)
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return fmt.Errorf("start the guard: %w", err)
	}
	defer null.Close()
	env := []string{guardEnv + "=" + guardMagic, "GORACE=atexit_sleep_ms=0", "GOMAXPROCS=1"}
	if c := os.Getenv(CookieEnv); c != "" {
		// A launcher started by a launcher: its guard is marked as it is.
		env = append(env, CookieEnv+"="+c)
	}
	proc, err := os.StartProcess("/proc/self/exe", []string{"oe-rt-launch-guard", strconv.Itoa(selfPid)}, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{r, null, null},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		w.Close()
		return fmt.Errorf("start the guard: %w", err)
	}
	reg.Lock()
	reg.direct[proc.Pid] = true
	reg.Unlock()
	exited := make(chan struct{})
	guard.proc, guard.w, guard.exited = proc, w, exited
	go func() {
		_, _ = proc.Wait()
		reg.Lock()
		delete(reg.direct, proc.Pid)
		reg.Unlock()
		close(exited)
		guard.Lock()
		defer guard.Unlock()
		if guard.proc == proc { // not stopped on purpose: it died
			guard.proc = nil
			guard.w.Close()
			replaceGuard("")
		}
	}()
	return nil
}

// stopGuard closes its pipe and waits for it to exit (bounded, then kills
// it).
func stopGuard() {
	proc, exited := guard.proc, guard.exited
	guard.proc = nil
	guard.w.Close()
	guard.w = nil
	select {
	case <-exited:
	case <-time.After(guardExit):
		_ = proc.Kill()
		<-exited
	}
}

// guardLaunch is what the guard knows of one launch.
type guardLaunch struct {
	token string
	cgs   []*cgroup // its tracking cgroup, then its limit cgroups
	procs map[int]uint64
}

// runGuard is the guard process: it reads the launcher's messages until
// the pipe closes, then ends what is left.
func runGuard(in io.Reader) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	launches := map[string]*guardLaunch{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "L":
			if len(f) < 5 {
				continue
			}
			l := &guardLaunch{token: f[1], procs: map[int]uint64{}}
			if cg := parseCgroup(f[2], f[3], f[4]); cg != nil {
				l.cgs = append(l.cgs, cg)
			}
			launches[f[1]] = l
		case "X":
			if l := launches[f[1]]; l != nil && len(f) >= 5 {
				if cg := parseCgroup(f[2], f[3], f[4]); cg != nil {
					l.cgs = append(l.cgs, cg)
				}
			}
		case "P":
			l := launches[f[1]]
			if l == nil || len(f) < 4 {
				continue
			}
			pid, _ := strconv.Atoi(f[2])
			start, _ := strconv.ParseUint(f[3], 10, 64)
			l.procs[pid] = start
			if len(l.procs) > 4096 {
				for pid, start := range l.procs {
					if !Alive(pid, start) {
						delete(l.procs, pid)
					}
				}
			}
		case "F":
			delete(launches, f[1])
		}
	}
	if len(launches) > 0 {
		endLaunches(launches, time.Now().Add(cleanupBound))
	}
	return 0
}

// endLaunches kills every process of the launches, in rounds until none is
// left or the deadline passes, and removes their cgroups.
func endLaunches(launches map[string]*guardLaunch, deadline time.Time) {
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		left := false
		snap := All()
		kids := map[int][]Proc{}
		for _, q := range snap {
			kids[q.PPid] = append(kids[q.PPid], q)
		}
		for _, l := range launches {
			var targets []Proc
			for _, cg := range l.cgs {
				cg.kill()
				for _, pid := range cg.members() {
					if st, err := readStat(pid); err == nil && cg.contains(pid) {
						targets = append(targets, st)
					}
				}
			}
			for pid, start := range l.procs {
				if st, err := readStat(pid); err == nil && st.Start == start {
					targets = append(targets, st)
				}
			}
			for _, q := range snap {
				if q.State != 'Z' && hasToken(q.Pid, l.token) {
					targets = append(targets, q)
				}
			}
			// and their descendants
			for k := 0; k < len(targets); k++ {
				if k > 10000 {
					break
				}
				targets = append(targets, kids[targets[k].Pid]...)
			}
			for _, q := range targets {
				if q.State != 'Z' && killProc(q.Pid, q.Start) {
					left = true
				}
			}
			for _, cg := range l.cgs {
				if cg.populated() {
					left = true
				}
			}
		}
		if !left || time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
	}
	for _, l := range launches {
		for _, cg := range l.cgs {
			_ = cg.remove(deadline.Add(time.Second))
		}
	}
}
