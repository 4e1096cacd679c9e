package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// forker makes every fork of the launcher on one OS thread that never
// exits: PR_SET_PDEATHSIG fires when the thread that forked the child
// exits, not the process (golang/go#27505), so a thread that lives as long
// as the process makes it mean "when this process dies". The same thread
// joins cgroup v1 cgroups for a fork (a v1 cgroup holds threads), so that
// the child is born in them, and goes back.
type forker struct {
	cgroups *cgroupHost
	jobs    chan forkJob
	start   sync.Once

	// Owned by the forking thread. v1Broken is set when it could not leave
	// a v1 tracking cgroup: v1 tracking is then not used again. stuck is
	// set when it could not leave a v1 limit cgroup: no fork happens on it
	// again, since the child would be born under another launch's limits.
	v1Broken bool
	stuck    error
}

func newForker(cg *cgroupHost) *forker {
	return &forker{cgroups: cg, jobs: make(chan forkJob)}
}

// forkJob is one fork: the program, and the cgroup v1 cgroups the forking
// thread joins for it (cgroupManager.Apply adds them).
type forkJob struct {
	path  string
	argv  []string
	attr  *os.ProcAttr
	joins []v1Join
	res   chan forkResult
}

// v1Join is a cgroup v1 cgroup the forking thread joins for a fork: must
// for a limit cgroup (no fork outside it), else a tracking cgroup, given
// up when it cannot be joined.
type v1Join struct {
	ctrl, dir string
	must      bool
}

type forkResult struct {
	proc    *os.Process
	started time.Time
	err     error
	cgErr   error // the tracking cgroup could not be used
}

// fork runs j on the forking thread.
func (f *forker) fork(j forkJob) forkResult {
	f.start.Do(func() {
		go func() {
			runtime.LockOSThread() // for ever: this goroutine never returns
			for j := range f.jobs {
				j.res <- f.run(j)
			}
		}()
	})
	j.res = make(chan forkResult, 1)
	f.jobs <- j
	return <-j.res
}

// run is a fork, on the forking thread.
func (f *forker) run(j forkJob) (r forkResult) {
	if f.stuck != nil {
		r.err = f.stuck
		return r
	}
	homes := map[string]string{} // controller -> the thread's own cgroup
	join := func(ctrl, dir string) error {
		if _, ok := homes[ctrl]; !ok {
			home, err := f.cgroups.threadCgroupV1(ctrl)
			if err != nil {
				return err
			}
			homes[ctrl] = home
		}
		return writeTid(dir)
	}
	limited := false
	defer func() {
		for ctrl, home := range homes {
			if err := writeTid(home); err != nil {
				if limited {
					f.stuck = fmt.Errorf("the launcher's forking thread could not leave its %s limit cgroup: %w", ctrl, err)
				}
				f.v1Broken = true
			}
		}
	}()
	for _, jn := range j.joins {
		if !jn.must {
			continue
		}
		limited = true
		if err := join(jn.ctrl, jn.dir); err != nil {
			r.err = &LimitError{Reason: fmt.Sprintf("the launcher's forking thread could not join the cgroup v1 %s: %v", jn.dir, errWords(err)), Fix: "run as root"}
			return r
		}
	}
	for _, jn := range j.joins {
		if jn.must || f.v1Broken {
			continue
		}
		if err := join(jn.ctrl, jn.dir); err != nil {
			r.cgErr = fmt.Errorf("join it: %w", err)
		}
	}
	r.started = time.Now()
	r.proc, r.err = os.StartProcess(j.path, j.argv, j.attr)
	return r
}

func writeTid(dir string) error {
	return os.WriteFile(filepath.Join(dir, "tasks"), []byte(strconv.Itoa(unix.Gettid())), 0)
}
