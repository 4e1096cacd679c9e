//go:build linux

package serve

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The reaper keeps exec: programs from leaving anything behind.
//
// Each program runs in its own process group, which is killed when its call
// ends. A descendant that leaves the group (setsid) would escape that; so,
// when Options.AdoptOrphans is set, serve makes itself a child subreaper:
// whatever an exec: program leaves behind is re-parented to serve instead of
// to init. Every child of serve that is not an exec: program it started is
// then such an orphan; it belongs to the calls in progress when it is found
// and is killed (with its process group, if it leads one) and reaped when
// the first of them ends, or at once when no call is in progress.
//
// Safety: serve signals only its own unreaped children, and process groups
// whose leader is its own unreaped child, so no PID it signals can have been
// recycled. Children are listed while no exec: program is between its fork
// and its registration (mu), so a program just started is never taken for
// an orphan.
type reaper struct {
	mu      sync.RWMutex // held for writing while children are listed
	lmu     sync.Mutex
	leaders map[int]int // exec: programs started and not yet reaped
	adopt   atomic.Bool // this process is a child subreaper
	calls   atomic.Int64
	smu     sync.Mutex // one sweep at a time
}

// reap is the process's reaper: a subreaper is a property of the process.
var reap = &reaper{leaders: map[int]int{}}

// orphanWait bounds how long a sweep waits for the processes it killed to
// exit (one in uninterruptible sleep may take longer; a later sweep reaps it).
const orphanWait = 2 * time.Second

// enableAdoption makes this process a child subreaper and turns on the
// ending of orphans.
func (r *reaper) enableAdoption() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper (prctl PR_SET_CHILD_SUBREAPER): %w", err)
	}
	r.adopt.Store(true)
	return nil
}

// disableAdoption undoes enableAdoption (for tests).
func (r *reaper) disableAdoption() {
	r.adopt.Store(false)
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
}

// start starts cmd and registers its process as an exec: program.
func (r *reaper) start(cmd *exec.Cmd) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	r.lmu.Lock()
	r.leaders[cmd.Process.Pid]++
	r.lmu.Unlock()
	r.calls.Add(1)
	return nil
}

// done unregisters a program that has been reaped, and, when orphans are
// adopted, ends those found now: they belong to this call, or to calls
// still in progress, and end with the first of them.
func (r *reaper) done(pid int) {
	r.lmu.Lock()
	if r.leaders[pid]--; r.leaders[pid] <= 0 {
		delete(r.leaders, pid)
	}
	r.lmu.Unlock()
	r.calls.Add(-1)
}

// adopting reports whether this process adopts orphans.
func (r *reaper) adopting() bool { return r.adopt.Load() }

// busy reports whether exec: programs are running.
func (r *reaper) busy() bool { return r.calls.Load() > 0 }

// endOrphans kills and reaps every adopted child; it repeats while killing
// re-parents more, within orphanWait. It does nothing unless orphans are
// adopted.
func (r *reaper) endOrphans() {
	if !r.adopt.Load() {
		return
	}
	r.sweep(true)
}

// sweep reaps the adopted children that have exited, and with kill, kills
// and reaps the others too.
func (r *reaper) sweep(kill bool) {
	r.smu.Lock()
	defer r.smu.Unlock()
	deadline := time.Now().Add(orphanWait)
	for {
		orphans := r.orphans()
		if len(orphans) == 0 {
			return
		}
		pending := 0
		for _, o := range orphans {
			switch {
			case o.state == 'Z':
			case kill && o.pgrp == o.pid:
				_ = syscall.Kill(-o.pid, syscall.SIGKILL)
			case kill:
				_ = syscall.Kill(o.pid, syscall.SIGKILL)
			default:
				continue // alive, and not ours to kill yet
			}
			pending++
			reapPid(o.pid, deadline)
		}
		if pending == 0 || time.Now().After(deadline) {
			return
		}
	}
}

// reapPid waits for a child that was killed (or is a zombie) to exit, and
// reaps it, until the deadline.
func reapPid(pid int, deadline time.Time) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || (err != nil && !errors.Is(err, syscall.EINTR)) {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// orphan is a child of this process that is not an exec: program.
type orphan struct {
	pid, pgrp int
	state     byte
}

// orphans lists this process's children that are not registered exec:
// programs.
func (r *reaper) orphans() []orphan {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lmu.Lock()
	defer r.lmu.Unlock()
	var out []orphan
	for _, pid := range children() {
		if r.leaders[pid] > 0 {
			continue
		}
		st, pgrp, err := procStat(pid)
		if err != nil {
			continue // reaped meanwhile (not by us: cannot be an orphan)
		}
		out = append(out, orphan{pid: pid, pgrp: pgrp, state: st})
	}
	return out
}

// children lists the processes whose parent is this process, from
// /proc/self/task/*/children.
func children() []int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// procStat reads a process's state and process group.
func procStat(pid int) (state byte, pgrp int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:]) // state ppid pgrp ...
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, errors.New("malformed stat")
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0][0], pgrp, err
}

// waitExit waits until cmd's process has exited, without reaping it: while
// it is a zombie its PID, and so its process group ID, cannot be reused.
// reaped is false: the caller reaps it with cmd.Wait.
func waitExit(cmd *exec.Cmd) (reaped bool, err error) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return false, nil
		}
	}
}
