package launch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The master's stand-in (Spec.MasterGroup). Baetyl's master starts an
// instance in its own process group: a signal an instance sends to its
// group (kill -TERM 0) reaches the master, the hub, the function manager
// and every service. So a launch with MasterGroup starts the program in the
// group of a stand-in: this same executable, re-executed, which does
// nothing but wait and write the number of every signal that reaches it on
// its standard output. It is this process's child (SIGKILL as its
// parent-death signal), never a member of the launch, and never signalled
// by the launcher but to end it: Cleanup closes its standard input, it
// writes what it has received and exits; a stand-in that does not is
// killed through its pidfd.

const (
	standInEnv   = "OE_RT_LAUNCH_STAND_IN"
	standInMagic = "v1"
	standInReady = 10 * time.Second // for the stand-in to say it is ready (a loaded machine)
	standInExit  = 2 * time.Second  // for it to exit when told to
)

// standInSignals are the signals the stand-in records by catching them:
// every one a process can catch but SIGHUP, SIGINT and SIGTERM, SIGURG
// (the Go runtime's own preemption signal), SIGCHLD and SIGWINCH (which
// reach a process without anyone sending them). SIGHUP, SIGINT and
// SIGTERM are left to the Go runtime's default, which ends the stand-in by
// that very signal when it is delivered: the launcher sees it in the
// stand-in's wait status, whatever the scheduling, as it sees SIGKILL.
func standInSignals() []os.Signal {
	var out []os.Signal
	for s := syscall.Signal(1); s <= 31; s++ {
		switch s {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM,
			syscall.SIGURG, syscall.SIGCHLD, syscall.SIGWINCH:
			continue
		}
		out = append(out, s)
	}
	return out
}

// findStandInShell returns the shell that runs the stand-in as
// standInScript, where the machine has one: about 2 ms of CPU a start, where this
// executable re-executed pays its whole package initialisation (about
// 45 ms for oe-rt, 130 ms for a race-built test binary), once for every
// instance conform starts. Without it, runStandIn in this executable is
// the stand-in.
func findStandInShell() string {
	if fi, err := os.Stat("/bin/sh"); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return "/bin/sh"
	}
	return ""
}

// standInScript is runStandIn in POSIX shell: a trap for each signal of
// standInSignals writes its number (traps run between commands: a read
// that a trapped signal interrupts returns 1, as it does at the end of
// its input, so the trap also marks that it ran), and the script exits
// when its standard input ends. A signal sent before the input ends is
// pending when the read returns, and its trap runs before the script
// exits. SIGHUP, SIGINT and SIGTERM keep their default, as for
// runStandIn. An echo to a pipe nobody reads fails in dash by an error
// that cuts its trap short, and raises SIGPIPE, whose trap echoes again:
// so the launcher reads the pipe until the stand-in exits (readOutput),
// and conform's own death kills the stand-in (its parent-death signal).
func standInScript() string {
	var b strings.Builder
	b.WriteString("s=\n")
	for _, sig := range standInSignals() {
		n := int(sig.(syscall.Signal))
		fmt.Fprintf(&b, "trap 'echo %d; s=1' %d\n", n, n)
	}
	b.WriteString("echo ready\nwhile :; do s=; read -r _ || [ -n \"$s\" ] || exit 0; done\n")
	return b.String()
}

// runStandIn is the stand-in: it writes "ready", then the number of each
// signal received, one a line, until its standard input closes.
func runStandIn() int {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, standInSignals()...)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	eof := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(eof)
				return
			}
		}
	}()
	write := func(s os.Signal) {
		if n, ok := s.(syscall.Signal); ok {
			fmt.Fprintln(out, int(n))
			out.Flush()
		}
	}
	for {
		select {
		case s := <-ch:
			write(s)
		case <-eof:
			// A signal sent just before: let it be delivered.
			time.Sleep(20 * time.Millisecond)
			for {
				select {
				case s := <-ch:
					write(s)
				default:
					return 0
				}
			}
		}
	}
}

// standIn is a running stand-in.
type standIn struct {
	proc  *os.Process
	reg   *registry // where the launcher registered it
	stdin *os.File
	ready chan struct{}
	read  chan struct{} // closed when its output is read to the end
	ended chan struct{} // closed when it has exited (not yet reaped)

	mu     sync.Mutex
	sigs   []GroupSignal
	killed bool // the launcher killed it
	once   sync.Once
}

// startStandIn starts a stand-in, in a process group of its own, and
// waits until it records signals.
func (h *host) startStandIn() (*standIn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the master's stand-in: %w", err)
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		return nil, fmt.Errorf("start the master's stand-in: %w", err)
	}
	defer outW.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start the master's stand-in: %w", err)
	}
	defer null.Close()
	job := forkJob{
		path: "/proc/self/exe",
		argv: []string{"oe-rt-master-stand-in"},
		attr: &os.ProcAttr{
			Env:   []string{standInEnv + "=" + standInMagic, "GORACE=atexit_sleep_ms=0", "GOMAXPROCS=1"},
			Files: []*os.File{inR, outW, null},
			Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
		},
	}
	if h.standInShell != "" {
		job.path = h.standInShell
		job.argv = []string{"oe-rt-master-stand-in", "-c", standInScript()}
		job.attr.Env = []string{}
	}
	h.reg.Lock()
	res := h.forker.fork(job)
	if res.err == nil {
		h.reg.direct[res.proc.Pid] = true
	}
	h.reg.Unlock()
	if res.err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start the master's stand-in: %w", res.err)
	}
	si := &standIn{proc: res.proc, reg: &h.reg, stdin: inW, ready: make(chan struct{}), read: make(chan struct{}), ended: make(chan struct{})}
	go si.readOutput(outR)
	go si.watch()
	select {
	case <-si.ready:
		return si, nil
	case <-si.read:
	case <-time.After(standInReady):
	}
	si.close()
	return nil, errors.New("start the master's stand-in: it did not get ready within " + standInReady.String())
}

func (si *standIn) readOutput(r *os.File) {
	defer close(si.read)
	defer r.Close()
	sc := bufio.NewScanner(r)
	ready := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "ready" && !ready {
			ready = true
			close(si.ready)
			continue
		}
		if n, err := strconv.Atoi(line); err == nil && n > 0 {
			si.mu.Lock()
			si.sigs = append(si.sigs, GroupSignal{Signal: syscall.Signal(n), At: time.Now()})
			si.mu.Unlock()
		}
	}
	// Read to the end even after a line the scanner refuses: the pipe
	// stays open while the stand-in lives (standInScript).
	_, _ = io.Copy(io.Discard, r)
}

// signals returns what reached the stand-in so far.
func (si *standIn) signals() []GroupSignal {
	si.mu.Lock()
	defer si.mu.Unlock()
	return append([]GroupSignal(nil), si.sigs...)
}

// watch notes the stand-in's death by a signal (one it does not catch:
// SIGHUP, SIGINT, SIGTERM, SIGKILL) when it happens, without reaping it:
// until close reaps it, its PID, the group's ID, cannot be reused.
func (si *standIn) watch() {
	defer close(si.ended)
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, si.proc.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.killed {
		return
	}
	const cldKilled, cldDumped = 2, 3 // si_code of a child killed by a signal (<bits/siginfo-consts.h>)
	if info.Code == cldKilled || info.Code == cldDumped {
		si.sigs = append(si.sigs, GroupSignal{Signal: syscall.Signal(siginfoStatus(&info)), At: time.Now()})
	}
}

// close tells the stand-in to exit (its standard input closes), takes
// what it wrote, and reaps it; one that does not exit within standInExit
// is killed through its pidfd (and that SIGKILL is not recorded).
func (si *standIn) close() {
	si.once.Do(func() {
		si.stdin.Close()
		select {
		case <-si.ended:
		case <-time.After(standInExit):
			si.mu.Lock()
			si.killed = true
			si.mu.Unlock()
			_ = si.proc.Kill()
			<-si.ended
		}
		select {
		case <-si.read:
		case <-time.After(standInExit):
		}
		_, _ = si.proc.Wait()
		si.reg.forget(si.proc.Pid)
	})
}

// siginfoStatus is si_status of a SIGCHLD siginfo (x/sys/unix keeps the
// union opaque): after si_signo, si_errno, si_code (and, on 64-bit, the
// padding that aligns the union), si_pid and si_uid.
func siginfoStatus(info *unix.Siginfo) int32 {
	b := (*[128]byte)(unsafe.Pointer(info))
	off := 24
	if unsafe.Sizeof(uintptr(0)) == 4 {
		off = 20
	}
	return *(*int32)(unsafe.Pointer(&b[off]))
}
