package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// v1Cgroups are a launch's cgroups v1, one per hierarchy: its tracking
// cgroup (in the pids hierarchy), or its limit cgroups (a memory cgroup
// with memory.limit_in_bytes, a pids cgroup with pids.max), which track it
// as well. The launcher's forking thread joins them for the fork.
type v1Cgroups struct {
	dirs   []v1Dir
	limits *limitCounters // nil for a tracking cgroup
}

// v1Dir is a cgroup v1 of the hierarchy of the controller ctrl.
type v1Dir struct {
	ctrl string // "pids", "memory"
	cgroupDir
}

var _ cgroupManager = (*v1Cgroups)(nil)

func (c *v1Cgroups) Version() int { return 1 }

// Apply has the forking thread join the cgroups for the fork; a limit
// cgroup it cannot join fails the start, a tracking cgroup is given up.
func (c *v1Cgroups) Apply(j *forkJob) {
	for _, d := range c.dirs {
		j.joins = append(j.joins, v1Join{ctrl: d.ctrl, dir: d.dir, must: c.limits != nil})
	}
}

// Set sets the limits of l that are not 0 in the cgroups of their
// controllers: memory.limit_in_bytes (and memory.memsw.limit_in_bytes at
// the same value where swap is accounted: swap is not used past it),
// pids.max.
func (c *v1Cgroups) Set(l Limits) error {
	for _, d := range c.dirs {
		switch {
		case d.ctrl == "memory" && l.Memory > 0:
			v := strconv.FormatInt(l.Memory, 10)
			if err := writeFile(d.dir, "memory.limit_in_bytes", v); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(d.dir, "memory.memsw.limit_in_bytes")); err == nil {
				if err := writeFile(d.dir, "memory.memsw.limit_in_bytes", v); err != nil {
					return err
				}
			}
		case d.ctrl == "pids" && l.Tasks > 0:
			if err := writeFile(d.dir, "pids.max", strconv.Itoa(l.Tasks)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *v1Cgroups) Pids() []int {
	var out []int
	for _, d := range c.dirs {
		out = append(out, d.pids()...)
	}
	return out
}

func (c *v1Cgroups) Contains(pid int) bool {
	for _, d := range c.dirs {
		p, ok := procCgroup(pid, func(_, ctrls string) bool { return hasOpt(ctrls, d.ctrl) })
		if ok && d.holds(p) {
			return true
		}
	}
	return false
}

// Kill does nothing: cgroup v1 has no cgroup.kill.
func (c *v1Cgroups) Kill() bool { return false }

func (c *v1Cgroups) Populated() bool { return len(c.Pids()) > 0 }

func (c *v1Cgroups) Stats() CgroupStats {
	if c.limits == nil {
		return c.readWith(Limits{})
	}
	return c.limits.stats(c.read)
}

func (c *v1Cgroups) read() CgroupStats { return c.readWith(c.limits.limits) }

func (c *v1Cgroups) readWith(lim Limits) CgroupStats {
	var memory, pids string
	for _, d := range c.dirs {
		switch d.ctrl {
		case "memory":
			memory = d.dir
		case "pids":
			pids = d.dir
		}
	}
	return readV1Stats(lim, memory, pids)
}

func (c *v1Cgroups) Destroy(deadline time.Time) error {
	c.limits.finish(c.read)
	var errs []error
	for i := range c.dirs {
		if err := c.dirs[i].remove(deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *v1Cgroups) Paths() []cgroupPath {
	var out []cgroupPath
	for _, d := range c.dirs {
		kind := "v1"
		if d.ctrl != "pids" {
			kind = "v1:" + d.ctrl
		}
		out = append(out, cgroupPath{kind: kind, dir: d.dir, rel: d.rel})
	}
	return out
}

func (c *v1Cgroups) String() string {
	var dirs []string
	for _, d := range c.dirs {
		dirs = append(dirs, d.dir)
	}
	return "cgroup v1 " + strings.Join(dirs, ", ")
}

// newV1Tracking makes a tracking cgroup in the pids hierarchy, beside this
// process's own.
func (ch *cgroupHost) newV1Tracking() (*v1Cgroups, error) {
	h := ch.hierarchies().v1
	if h.own == "" {
		return nil, errors.New("no cgroup v1 pids hierarchy")
	}
	d, err := mkdir(h.own, ch.name(), false)
	if err != nil {
		return nil, fmt.Errorf("cgroup v1: %v", err)
	}
	d.rel = h.rel(d.dir)
	return &v1Cgroups{dirs: []v1Dir{{ctrl: "pids", cgroupDir: d}}}, nil
}

// newV1Limits makes the cgroups v1 that enforce l: a memory cgroup and a
// pids cgroup (those that limit something), each beside this process's
// own.
func (ch *cgroupHost) newV1Limits(l Limits) (*v1Cgroups, error) {
	h := ch.hierarchies()
	c := &v1Cgroups{limits: &limitCounters{limits: l}}
	fail := func(err error) (*v1Cgroups, error) {
		_ = c.Destroy(time.Now().Add(time.Second))
		return nil, err
	}
	name := ch.name()
	// add makes the cgroup of ctrl in hierarchy x.
	add := func(ctrl string, x hierarchy) error {
		if x.own == "" {
			return fmt.Errorf("no cgroup v1 %s hierarchy with this process's cgroup in it", ctrl)
		}
		d, err := mkdir(x.own, name, false)
		if err != nil {
			return fmt.Errorf("make a %s cgroup in %s: %w", ctrl, x.own, errWords(err))
		}
		d.rel = x.rel(d.dir)
		c.dirs = append(c.dirs, v1Dir{ctrl: ctrl, cgroupDir: d})
		return nil
	}
	if l.Memory > 0 {
		if err := add("memory", h.v1mem); err != nil {
			return fail(err)
		}
	}
	if l.Tasks > 0 {
		if err := add("pids", h.v1); err != nil {
			return fail(err)
		}
	}
	if err := c.Set(l); err != nil {
		return fail(err)
	}
	return c, nil
}

// readV1Stats reads the counters of the cgroups v1 that enforce lim: the
// memory and pids cgroups ("" for one that is not there).
func readV1Stats(lim Limits, memory, pids string) CgroupStats {
	st := CgroupStats{Version: 1, Limits: lim, MemoryFile: "memory.limit_in_bytes", MemoryPeak: -1, TasksPeak: -1}
	if memory != "" {
		st.MemoryPeak = readInt(memory, "memory.max_usage_in_bytes", -1)
		st.LimitHits = max(0, readInt(memory, "memory.failcnt", 0)) + max(0, readInt(memory, "memory.memsw.failcnt", 0))
		st.OOMKills = readKeyed(memory, "memory.oom_control")["oom_kill"]
	}
	if pids != "" {
		st.TasksPeak = readInt(pids, "pids.peak", -1)
		st.TasksRefused = readKeyed(pids, "pids.events")["max"]
	}
	return st
}
