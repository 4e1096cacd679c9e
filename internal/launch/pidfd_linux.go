package launch

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var (
	selfPid  = os.Getpid()
	selfPgid = func() int { g, _ := unix.Getpgid(0); return g }()
	selfSid  = func() int { s, _ := unix.Getsid(0); return s }()
)

// handle is a process the launcher may signal: a pidfd opened first, then
// the start time read from /proc checked, so that the fd refers to the
// process that was meant and never to one that received its PID later.
// Where pidfds are missing (Linux < 5.3) fd is -1 and the check is made
// just before the signal.
type handle struct {
	pid int
	fd  int
	st  Proc
}

// openProc returns a handle on pid if it is still the process that started
// at start (start 0: any). It refuses this process itself and PID 1.
func openProc(pid int, start uint64) (handle, bool) {
	if pid <= 1 || pid == selfPid {
		return handle{}, false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if !errors.Is(err, unix.ENOSYS) {
			return handle{}, false
		}
		fd = -1
	}
	st, err := readStat(pid)
	if err != nil || (start != 0 && st.Start != start) {
		if fd >= 0 {
			unix.Close(fd)
		}
		return handle{}, false
	}
	return handle{pid: pid, fd: fd, st: st}, true
}

func (h handle) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
	}
}

func (h handle) signal(sig unix.Signal) error {
	if h.fd >= 0 {
		return unix.PidfdSendSignal(h.fd, sig, nil, 0)
	}
	return unix.Kill(h.pid, sig)
}

// reap collects the exit status of the process if it is a zombie child of
// this process; it reports whether it did.
func (h handle) reap() bool {
	if h.fd >= 0 {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, h.fd, &info, unix.WEXITED|unix.WNOHANG, nil)
		if err == nil || !errors.Is(err, unix.EINVAL) {
			return err == nil
		}
		// P_PIDFD is Linux 5.4+: fall back to the PID.
	}
	var ws unix.WaitStatus
	n, _ := unix.Wait4(h.pid, &ws, unix.WNOHANG, nil)
	return n == h.pid
}

// killProc sends SIGKILL to pid if it is still the process that started
// at start and has not exited; it reports whether it did.
func killProc(pid int, start uint64) bool {
	h, ok := openProc(pid, start)
	if !ok {
		return false
	}
	defer h.close()
	if h.st.State == 'Z' || h.st.State == 'X' {
		return false
	}
	return h.signal(unix.SIGKILL) == nil
}

// reapProc reaps pid if it is still the zombie that started at start and
// this process is its parent.
func reapProc(pid int, start uint64) bool {
	h, ok := openProc(pid, start)
	if !ok {
		return false
	}
	defer h.close()
	if h.st.State != 'Z' || h.st.PPid != selfPid {
		return false
	}
	return h.reap()
}
