//go:build !linux

package serve

import (
	"errors"
	"os/exec"
)

// reaper, off Linux: no subreaper, so what leaves an exec: program's process
// group escapes; the group itself is still killed.
type reaper struct{}

var reap = &reaper{}

func (r *reaper) enableAdoption() error {
	return errors.New("adopting orphans needs Linux (prctl PR_SET_CHILD_SUBREAPER)")
}

func (r *reaper) disableAdoption() {}

func (r *reaper) start(cmd *exec.Cmd) error { return cmd.Start() }

func (r *reaper) done(int) {}

func (r *reaper) endOrphans() {}

func (r *reaper) adopting() bool { return false }

func (r *reaper) busy() bool { return false }

func (r *reaper) sweep(bool) {}

// waitExit reaps cmd's process: without waitid(WNOWAIT) the process group
// is killed after its leader is reaped.
func waitExit(cmd *exec.Cmd) (reaped bool, err error) {
	return true, cmd.Wait()
}

type orphan struct{ pid int }

func (r *reaper) orphans() []orphan { return nil }
