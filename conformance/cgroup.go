package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// cgroup is a cgroup v2 with memory.max and pids.max set, that the runtime
// is started in (pids.max counts threads too, which is what the container
// runtime's limit does).
type cgroup struct {
	dir string
	f   *os.File
	fd  int
}

const cgroupRoot = "/sys/fs/cgroup"

func newCgroup(memory int64, threads int) (*cgroup, error) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		return nil, errors.New("cgroup v2 is not mounted at " + cgroupRoot)
	}
	dir := filepath.Join(cgroupRoot, fmt.Sprintf("oe-rt-conform-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create a cgroup: %w", err)
	}
	cg := &cgroup{dir: dir}
	write := func(file, v string) error {
		return os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644)
	}
	if err := write("memory.max", strconv.FormatInt(memory, 10)); err != nil {
		cg.remove()
		return nil, fmt.Errorf("set memory.max (is the memory controller delegated?): %w", err)
	}
	if err := write("pids.max", strconv.Itoa(threads)); err != nil {
		cg.remove()
		return nil, fmt.Errorf("set pids.max (is the pids controller delegated?): %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		cg.remove()
		return nil, err
	}
	cg.f, cg.fd = f, int(f.Fd())
	return cg, nil
}

func (c *cgroup) remove() {
	if c.f != nil {
		c.f.Close()
	}
	_ = os.Remove(c.dir)
}

// openCgroup makes the run's cgroup, or records why it cannot
// (resources.limits reports it).
func (r *runner) openCgroup() {
	cg, err := newCgroup(r.cfg.MemoryLimit, r.cfg.ThreadLimit)
	if err != nil {
		r.log.Warn("cgroup limits unavailable", "reason", err.Error())
		r.cgroupErr = err
		return
	}
	r.cgroup = cg
}

func (r *runner) closeCgroup() {
	if r.cgroup != nil {
		r.cgroup.remove()
	}
}
