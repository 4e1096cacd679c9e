// Package launch starts a runtime the way the function manager does and
// makes sure it is gone afterwards. It is shared by conform and bench.
//
// A Process runs in its own process group; its standard output and error are
// drained continuously into bounded buffers (a runtime that floods its output
// never blocks, and the tail is kept for reports); a sampler polls /proc for
// the process tree's total RSS and thread count and remembers every
// descendant it has seen, so that one that left the group (setsid) can still
// be found and ended. Stop sends SIGTERM to the group, waits a grace period,
// then SIGKILLs the group and every known descendant, and always reaps.
//
// On Linux, EnableSubreaper makes this process a child subreaper, so that
// orphaned descendants are re-parented to it rather than to init and can be
// seen and reaped. It is process-wide: call it once, from the command layer
// or a test's TestMain.
package launch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec says what to start.
type Spec struct {
	// Path is the program; a name without a slash is looked up in PATH.
	Path string
	// Args are the program's arguments (without the program's name).
	Args []string
	// Argv0 is argv[0] as the program sees it ("" = Path).
	Argv0 string
	// Dir is the working directory; empty means the current one.
	Dir string
	// Env is the whole environment of the program.
	Env []string
	// TailBytes bounds how much of stdout and stderr is kept (each); 0
	// means 64 KiB.
	TailBytes int
	// SampleEvery is the interval of the /proc sampler; 0 means 20 ms.
	SampleEvery time.Duration
	// CgroupFD, when > 0, starts the program in that cgroup (v2).
	CgroupFD int
}

// Process is a started program.
type Process struct {
	cmd     *exec.Cmd
	Pid     int
	Started time.Time
	stdout  *Ring
	stderr  *Ring
	done    chan struct{}
	state   *os.ProcessState
	waitErr error
	exitAt  time.Time

	cookie  string
	mu      sync.Mutex
	known   map[int]uint64 // pid -> start time (clock ticks), every descendant seen
	peakRSS int64
	peakThr int
	samples int
	stopS   chan struct{}
	stopped sync.Once
	sampler sync.WaitGroup
}

// Start starts the program described by spec.
func Start(spec Spec) (*Process, error) {
	path := spec.Path
	if path == "" {
		return nil, errors.New("no program to start")
	}
	lp, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	tail := spec.TailBytes
	if tail <= 0 {
		tail = 64 << 10
	}
	cmd := exec.Command(lp, spec.Args...)
	if spec.Argv0 != "" {
		cmd.Args[0] = spec.Argv0
	}
	cmd.Dir = spec.Dir
	// The cookie marks every descendant: one that left the process group
	// and the tree (setsid, double fork) still carries it in its
	// environment, where Leftovers and KillDescendants find it.
	cookie := newCookie()
	cmd.Env = append(append([]string(nil), spec.Env...), CookieEnv+"="+cookie)
	p := &Process{
		cmd:    cmd,
		cookie: cookie,
		stdout: NewRing(tail),
		stderr: NewRing(tail),
		done:   make(chan struct{}),
		known:  map[int]uint64{},
		stopS:  make(chan struct{}),
	}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.CgroupFD > 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = spec.CgroupFD
	}
	// Output copying must not keep Wait waiting for a descendant that holds
	// the pipes after the runtime itself has exited.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p.Started = time.Now()
	p.Pid = cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		p.exitAt = time.Now()
		close(p.done)
	}()
	every := spec.SampleEvery
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	p.sample()
	p.sampler.Add(1)
	go p.sampleLoop(every)
	return p, nil
}

func (p *Process) sampleLoop(every time.Duration) {
	defer p.sampler.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stopS:
			return
		case <-p.done:
			// One last look for descendants the runtime left behind.
			p.sample()
			return
		case <-t.C:
			p.sample()
		}
	}
}

// sample records the tree's members, RSS and threads.
func (p *Process) sample() {
	tree := Tree(p.Pid)
	var rss int64
	var thr int
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range tree {
		if _, ok := p.known[pr.Pid]; !ok && pr.Pid != p.Pid {
			p.known[pr.Pid] = pr.Start
		}
		rss += pr.RSS
		thr += pr.Threads
	}
	if len(tree) > 0 {
		p.samples++
	}
	if rss > p.peakRSS {
		p.peakRSS = rss
	}
	if thr > p.peakThr {
		p.peakThr = thr
	}
}

// Usage is what the sampler saw.
type Usage struct {
	// PeakRSS is the largest total resident set of the process tree, in
	// bytes, over the samples.
	PeakRSS int64
	// PeakThreads is the largest total thread count of the tree.
	PeakThreads int
	// Samples is how many samples saw the tree; 0 means nothing could be
	// measured (no /proc).
	Samples int
}

// Usage returns the peaks so far.
func (p *Process) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Usage{PeakRSS: p.peakRSS, PeakThreads: p.peakThr, Samples: p.samples}
}

// Done is closed when the program has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the program has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Exit describes how the program ended.
type Exit struct {
	// Code is the exit status, or -1 when it was killed by a signal.
	Code int
	// Signal is the signal that killed it, if any.
	Signal syscall.Signal
	// At is when it was reaped.
	At time.Time
}

func (e Exit) String() string {
	if e.Signal != 0 {
		return "killed by " + e.Signal.String()
	}
	return "exit status " + strconv.Itoa(e.Code)
}

// ExitStatus returns how the program ended; ok is false while it runs.
func (p *Process) ExitStatus() (e Exit, ok bool) {
	if !p.Exited() {
		return Exit{}, false
	}
	e = Exit{Code: p.state.ExitCode(), At: p.exitAt}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
	}
	return e, true
}

// Signal sends sig to the program's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return syscall.Kill(-p.Pid, sig)
}

// Wait waits for the program to exit, at most until ctx is done.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop ends the program: SIGTERM to its group, up to grace for it to exit,
// then SIGKILL to the group; then every descendant still alive is killed
// and reaped. Stop is safe to call more than once and always returns with
// nothing left running. It reports whether the program exited by itself
// within the grace period.
func (p *Process) Stop(grace time.Duration) (graceful bool) {
	graceful = true
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
			graceful = false
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
			<-p.done // cmd.WaitDelay bounds this
		}
		t.Stop()
	}
	p.KillDescendants()
	p.stopped.Do(func() { close(p.stopS) })
	p.sampler.Wait()
	return graceful
}

// Kill ends the program and its descendants at once.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.KillDescendants()
	p.stopped.Do(func() { close(p.stopS) })
	p.sampler.Wait()
}

// Leftovers lists the descendants still alive (zombies do not count).
func (p *Process) Leftovers() []int {
	p.sample()
	p.adoptMarked()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for pid, start := range p.known {
		if Alive(pid, start) {
			out = append(out, pid)
		}
	}
	return out
}

// KillDescendants SIGKILLs the group and every descendant ever seen that is
// still the same process, then reaps those that were re-parented to us.
func (p *Process) KillDescendants() {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.sample()
	p.adoptMarked()
	p.mu.Lock()
	known := make(map[int]uint64, len(p.known))
	for k, v := range p.known {
		known[k] = v
	}
	p.mu.Unlock()
	for pid, start := range known {
		if Exists(pid, start) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for pid, start := range known {
		for Exists(pid, start) && time.Now().Before(deadline) {
			// Reap it if it is our child (a re-parented orphan); otherwise
			// wait for its parent or init to.
			var ws syscall.WaitStatus
			if n, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); n == pid {
				break
			}
			if !Alive(pid, start) && !isOurChild(pid) {
				break // a zombie someone else will reap
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// adoptMarked adds to the known descendants every live process that carries
// this process's cookie in its environment.
func (p *Process) adoptMarked() {
	marked := Marked(CookieEnv + "=" + p.cookie)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range marked {
		if pr.Pid != p.Pid {
			if _, ok := p.known[pr.Pid]; !ok {
				p.known[pr.Pid] = pr.Start
			}
		}
	}
}

// CookieEnv is the variable that marks a started program and its
// descendants.
const CookieEnv = "OE_RT_LAUNCH_COOKIE"

var cookieSeq atomic.Int64

func newCookie() string {
	return fmt.Sprintf("%d-%d-%d", os.Getpid(), time.Now().UnixNano(), cookieSeq.Add(1))
}

func isOurChild(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.PPid == os.Getpid()
}

// Stdout returns the tail of the program's standard output.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr returns the tail of the program's standard error.
func (p *Process) Stderr() string { return p.stderr.String() }

// OutputBytes returns how many bytes the program wrote to stdout and stderr.
func (p *Process) OutputBytes() (stdout, stderr int64) {
	return p.stdout.Total(), p.stderr.Total()
}

// FreePort returns a free TCP address on 127.0.0.1.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// Ring keeps the last bytes written to it.
type Ring struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	total int64
}

// NewRing returns a ring of max bytes.
func NewRing(max int) *Ring { return &Ring{max: max} }

// Write keeps the tail; it never blocks and never fails.
func (r *Ring) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += int64(len(b))
	if len(b) >= r.max {
		r.buf = append(r.buf[:0], b[len(b)-r.max:]...)
		return len(b), nil
	}
	if over := len(r.buf) + len(b) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, b...)
	return len(b), nil
}

// String returns the kept tail.
func (r *Ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// Total is how many bytes were written in all.
func (r *Ring) Total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}
