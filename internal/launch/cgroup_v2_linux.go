package launch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2Cgroups is one cgroup v2 of a launch: its tracking cgroup, or its
// limit cgroup (memory.max, memory.swap.max 0, pids.max), inside which
// its tracking cgroup is made. The program is cloned into it.
type v2Cgroups struct {
	cgroupDir
	limits *limitCounters // nil for a tracking cgroup
}

var _ cgroupManager = (*v2Cgroups)(nil)

func (c *v2Cgroups) Version() int { return 2 }

// Apply has the program cloned into the cgroup (CLONE_INTO_CGROUP).
func (c *v2Cgroups) Apply(j *forkJob) {
	j.attr.Sys.UseCgroupFD, j.attr.Sys.CgroupFD = true, c.fd
}

// Set sets the limits of l that are not 0: memory.max (and
// memory.swap.max 0: swap is not used past it), pids.max.
func (c *v2Cgroups) Set(l Limits) error {
	if l.Memory > 0 {
		if err := writeFile(c.dir, "memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(c.dir, "memory.swap.max")); err == nil {
			if err := writeFile(c.dir, "memory.swap.max", "0"); err != nil {
				return err
			}
		}
	}
	if l.Tasks > 0 {
		return writeFile(c.dir, "pids.max", strconv.Itoa(l.Tasks))
	}
	return nil
}

func (c *v2Cgroups) Pids() []int { return c.pids() }

func (c *v2Cgroups) Contains(pid int) bool {
	p, ok := procCgroup(pid, func(id, ctrls string) bool { return id == "0" && ctrls == "" })
	return ok && c.holds(p)
}

func (c *v2Cgroups) Kill() bool {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0) == nil
}

func (c *v2Cgroups) Populated() bool {
	if b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events")); err == nil {
		return bytes.Contains(b, []byte("populated 1"))
	}
	return len(c.pids()) > 0
}

func (c *v2Cgroups) Stats() CgroupStats {
	if c.limits == nil {
		return readV2Stats(Limits{}, c.dir)
	}
	return c.limits.stats(c.read)
}

func (c *v2Cgroups) read() CgroupStats { return readV2Stats(c.limits.limits, c.dir) }

func (c *v2Cgroups) Destroy(deadline time.Time) error {
	c.limits.finish(c.read)
	defer c.close()
	return c.remove(deadline)
}

func (c *v2Cgroups) Paths() []cgroupPath {
	return []cgroupPath{{kind: "v2", dir: c.dir, rel: c.rel}}
}

func (c *v2Cgroups) String() string { return "cgroup v2 " + c.dir }

// newV2Tracking makes a tracking cgroup v2 inside the cgroup open as
// parentFD (0: beside this process).
func (ch *cgroupHost) newV2Tracking(parentFD int) (*v2Cgroups, error) {
	h := ch.hierarchies().v2
	parent := h.own
	if parentFD > 0 {
		parent, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(parentFD))
	}
	if parent == "" || h.rel(parent) == "" {
		return nil, errors.New("no cgroup v2 found")
	}
	d, err := mkdir(parent, ch.name(), true)
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: %v", err)
	}
	d.rel = h.rel(d.dir)
	return &v2Cgroups{cgroupDir: d}, nil
}

// newV2Limits makes the cgroup v2 that enforces l.
func (ch *cgroupHost) newV2Limits(l Limits) (*v2Cgroups, error) {
	parent, err := ch.v2LimitParent()
	if err != nil {
		return nil, err
	}
	h := ch.hierarchies().v2
	if parent != h.own {
		removeStale(parent)
	}
	d, err := mkdir(parent, ch.name(), false)
	if err != nil {
		return nil, fmt.Errorf("make a cgroup in %s: %w", parent, errWords(err))
	}
	d.rel = h.rel(d.dir)
	c := &v2Cgroups{cgroupDir: d, limits: &limitCounters{limits: l}}
	fail := func(err error) (*v2Cgroups, error) {
		_ = c.remove(time.Now().Add(time.Second))
		return nil, err
	}
	if err := c.Set(l); err != nil {
		return fail(err)
	}
	fd, err := unix.Open(d.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", d.dir, err))
	}
	c.fd = fd
	return c, nil
}

// v2LimitParent finds where a cgroup v2 with memory and pids limits can be
// made: this process's cgroup when it is the root, else its parent, if the
// memory and pids controllers are enabled for the children there.
func (ch *cgroupHost) v2LimitParent() (string, error) {
	h := ch.hierarchies().v2
	if h.mnt == "" {
		return "", errors.New("no cgroup v2 is mounted")
	}
	if h.own == "" {
		return "", fmt.Errorf("this process's cgroup is not visible under %s", h.mnt)
	}
	root, _ := os.ReadFile(filepath.Join(h.mnt, "cgroup.controllers"))
	if !hasWord(string(root), "memory") || !hasWord(string(root), "pids") {
		return "", fmt.Errorf("%s offers no memory and pids controllers (cgroup.controllers is %q: on a hybrid hierarchy they are bound to cgroup v1)",
			h.mnt, strings.TrimSpace(string(root)))
	}
	cands := []string{h.own}
	if h.own != h.mnt {
		// A cgroup other than the root with processes in it cannot enable
		// controllers for its children: its parent may.
		cands = []string{filepath.Dir(h.own)}
	}
	var why []string
	for _, dir := range cands {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		switch {
		case err != nil:
			why = append(why, err.Error())
		case !hasWord(string(b), "memory") || !hasWord(string(b), "pids"):
			why = append(why, fmt.Sprintf("%s does not enable the memory and pids controllers for its children (cgroup.subtree_control is %q)", dir, strings.TrimSpace(string(b))))
		default:
			return dir, nil
		}
	}
	return "", errors.New(strings.Join(why, "; "))
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// readV2Stats reads the counters of the cgroup v2 dir that enforces lim.
func readV2Stats(lim Limits, dir string) CgroupStats {
	st := CgroupStats{Version: 2, Limits: lim, MemoryFile: "memory.max"}
	st.MemoryPeak = readInt(dir, "memory.peak", -1)
	ev := readKeyed(dir, "memory.events")
	st.LimitHits, st.OOMKills = ev["max"], ev["oom_kill"]
	st.TasksPeak = readInt(dir, "pids.peak", -1)
	st.TasksRefused = readKeyed(dir, "pids.events")["max"]
	return st
}
