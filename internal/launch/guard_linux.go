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

// guardConn is the launcher's side of the guard (in the host value).
type guardConn struct {
	sync.Mutex
	proc   *os.Process
	w      *os.File
	exited chan struct{} // closed when the guard has exited and been reaped
	refs   int
	err    error // why the last start failed
}

// guardAdd counts a launch in and tells the guard of it (starting the
// guard if need be). It returns "" or why the launch is not guarded.
func (h *host) guardAdd(p *Process) string {
	h.guard.Lock()
	defer h.guard.Unlock()
	h.guard.refs++
	ok := false
	if h.guard.proc == nil {
		ok = h.replaceGuard(launchLine(p)) // and tell it of launches left unguarded
	} else {
		ok = h.guardWrite(launchLine(p))
	}
	switch {
	case h.guard.proc == nil:
		return fmt.Sprintf("no guard (%v)", h.guard.err)
	case !ok:
		return "no guard (it could not be told)"
	}
	return ""
}

// launchLine tells the guard of a launch: "L token kind dir rel" for its
// tracking cgroup, then "X token kind dir rel" for each limit cgroup (kind
// v2, v1 — pids — or v1:memory).
func launchLine(p *Process) string {
	t := cgroupPath{kind: "-"}
	if m := p.sys.track; m != nil {
		t = m.Paths()[0]
	}
	line := fmt.Sprintf("L %s %s %s %s\n", p.cookie, t.kind, strconv.Quote(t.dir), strconv.Quote(t.rel))
	if p.sys.lim != nil {
		for _, cp := range p.sys.lim.Paths() {
			line += fmt.Sprintf("X %s %s %s %s\n", p.cookie, cp.kind, strconv.Quote(cp.dir), strconv.Quote(cp.rel))
		}
	}
	return line
}

// parseCgroup reads what launchLine wrote; nil for "-".
func parseCgroup(kind, qdir, qrel string) cgroupManager {
	dir, err1 := strconv.Unquote(qdir)
	rel, err2 := strconv.Unquote(qrel)
	if err1 != nil || err2 != nil {
		return nil
	}
	return managerFor(cgroupPath{kind: kind, dir: dir, rel: rel})
}

// guardSend tells the guard something, if there is one.
func (h *host) guardSend(msg string) {
	if msg == "" {
		return
	}
	h.guard.Lock()
	defer h.guard.Unlock()
	if h.guard.proc != nil {
		h.guardWrite(msg)
	}
}

// guardForget tells the guard a launch is cleaned up, and stops the guard
// when it was the last.
func (h *host) guardForget(p *Process) {
	h.guard.Lock()
	defer h.guard.Unlock()
	if h.guard.proc != nil {
		h.guardWrite("F " + p.cookie + "\n")
	}
	h.guard.refs--
	if h.guard.refs == 0 && h.guard.proc != nil {
		h.stopGuard()
	}
}

// guardWrite writes with a bound; a guard that does not read (stopped,
// dead) is replaced, and told again of every live launch.
func (h *host) guardWrite(msg string) bool {
	if writeBounded(h.guard.w, msg) == nil {
		return true
	}
	return h.replaceGuard(msg)
}

// replaceGuard stops the guard, starts another, tells it of every live
// launch, then msg.
func (h *host) replaceGuard(msg string) bool {
	if h.guard.proc != nil {
		h.stopGuard()
	}
	if h.guard.err = h.startGuard(); h.guard.err != nil {
		return false
	}
	h.reg.Lock()
	var all strings.Builder
	for p := range h.reg.live {
		all.WriteString(launchLine(p))
		p.mu.Lock()
		fmt.Fprintf(&all, "P %s %d %d\n", p.cookie, p.Pid, p.sys.startTicks)
		for pid, start := range p.sys.known {
			fmt.Fprintf(&all, "P %s %d %d\n", p.cookie, pid, start)
		}
		p.mu.Unlock()
	}
	h.reg.Unlock()
	return writeBounded(h.guard.w, all.String()+msg) == nil
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
func (h *host) startGuard() error {
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
	h.reg.Lock()
	h.reg.direct[proc.Pid] = true
	h.reg.Unlock()
	exited := make(chan struct{})
	h.guard.proc, h.guard.w, h.guard.exited = proc, w, exited
	go func() {
		_, _ = proc.Wait()
		h.reg.forget(proc.Pid)
		close(exited)
		h.guard.Lock()
		defer h.guard.Unlock()
		if h.guard.proc == proc { // not stopped on purpose: it died
			h.guard.proc = nil
			h.guard.w.Close()
			h.replaceGuard("")
		}
	}()
	return nil
}

// stopGuard closes its pipe and waits for it to exit (bounded, then kills
// it).
func (h *host) stopGuard() {
	proc, exited := h.guard.proc, h.guard.exited
	h.guard.proc = nil
	h.guard.w.Close()
	h.guard.w = nil
	select {
	case <-exited:
	case <-time.After(guardExit):
		_ = proc.Kill()
		<-exited
	}
}

// guardFields splits a line told to the guard into its fields: words,
// and strings quoted by strconv.Quote (a cgroup's path may hold a blank).
func guardFields(line string) []string {
	var out []string
	for {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			return out
		}
		if line[0] == '"' {
			if q, err := strconv.QuotedPrefix(line); err == nil {
				out = append(out, q)
				line = line[len(q):]
				continue
			}
		}
		w, rest, _ := strings.Cut(line, " ")
		out = append(out, w)
		line = rest
	}
}

// guardLaunch is what the guard knows of one launch.
type guardLaunch struct {
	token string
	cgs   []cgroupManager // its tracking cgroup, then its limit cgroups
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
		f := guardFields(sc.Text())
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
				cg.Kill()
				for _, pid := range cg.Pids() {
					if st, err := readStat(pid); err == nil && cg.Contains(pid) {
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
				if cg.Populated() {
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
			_ = cg.Destroy(deadline.Add(time.Second))
		}
	}
}
