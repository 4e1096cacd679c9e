package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Limit cgroups. A launch with Spec.Limits gets cgroups of its own, as a
// container does, and its program is born in them:
//
//   - cgroup v2, where this process may make a cgroup under a parent that
//     enables the memory and pids controllers for its children (its own
//     cgroup when that is the root; else its parent: root, or a delegated
//     subtree where this process runs in a leaf): one cgroup with
//     memory.max, memory.swap.max 0 and pids.max. The tracking cgroup is
//     made inside it and the program cloned into that (CLONE_INTO_CGROUP),
//     so the limits apply from its first instruction.
//   - cgroup v1, where this process may make cgroups in the memory and pids
//     hierarchies (root): a memory cgroup with memory.limit_in_bytes (and
//     memory.memsw.limit_in_bytes at the same value where swap is
//     accounted) and a pids cgroup with pids.max, each under this process's
//     own. The launcher's forking thread joins both for the fork (a v1
//     cgroup holds threads), so the child is born in them, and goes back.
//     They track the launch as well: nothing leaves them unless moved by a
//     privileged process.
//
// Cleanup reads the kernel's counters one last time (LimitStats), then
// removes them; if this process dies, the guard removes them.

// limitsEnv forces how limits are enforced: "v2" or "v1" (for tests, and
// for a machine where the automatic choice misbehaves).
const limitsEnv = "OE_RT_LAUNCH_LIMITS"

// limitCgroups are a launch's limit cgroups.
type limitCgroups struct {
	v2     bool
	limits Limits
	cgs    []*cgroup // v2: the one cgroup; v1: the memory cgroup, then the pids cgroup (those that limit something)
	fd     int       // v2: the open directory of cgs[0], the tracking cgroup's parent; -1 otherwise

	mu    sync.Mutex
	final *CgroupStats // read just before the cgroups were removed
}

// newLimitCgroups makes the cgroups that enforce l, by cgroup v2 where it
// can, else by cgroup v1, or says why it cannot and what would help.
func newLimitCgroups(l Limits) (*limitCgroups, error) {
	mode := os.Getenv(limitsEnv)
	var why []string
	if mode == "" || mode == "v2" {
		lc, err := newV2Limits(l)
		if err == nil {
			return lc, nil
		}
		why = append(why, "cgroup v2: "+err.Error())
	}
	if mode == "" || mode == "v1" {
		lc, err := newV1Limits(l)
		if err == nil {
			return lc, nil
		}
		why = append(why, "cgroup v1: "+err.Error())
	}
	if mode != "" && mode != "v1" && mode != "v2" {
		why = append(why, fmt.Sprintf("%s=%q: want v2 or v1", limitsEnv, mode))
	}
	fix := "run as root, or in a cgroup v2 delegated to this user whose parent enables the memory and pids controllers for its children (cgroup.subtree_control) while oe-rt runs in a leaf of it"
	if mode == "v1" {
		fix = "run as root (cgroup v1 is not delegated to other users)"
	}
	return nil, &LimitError{Reason: strings.Join(why, "; "), Fix: fix}
}

// CheckLimits says how this process would enforce limits ("cgroup v2" or
// "cgroup v1"), or why it cannot (a *LimitError). It makes the cgroups and
// removes them at once.
func CheckLimits() (string, error) {
	lc, err := newLimitCgroups(Limits{Memory: 1 << 30, Tasks: 1 << 12})
	if err != nil {
		return "", err
	}
	lc.remove(time.Now().Add(time.Second))
	if lc.v2 {
		return "cgroup v2", nil
	}
	return "cgroup v1", nil
}

func limitName() string { return fmt.Sprintf("oe-rt-launch.%d.%d", selfPid, cgroupSeq.Add(1)) }

// v2LimitParent finds where a cgroup v2 with memory and pids limits can be
// made: this process's cgroup when it is the root, else its parent, if the
// memory and pids controllers are enabled for the children there.
func v2LimitParent() (string, error) {
	h := hierarchies().v2
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

func newV2Limits(l Limits) (*limitCgroups, error) {
	parent, err := v2LimitParent()
	if err != nil {
		return nil, err
	}
	h := hierarchies().v2
	if parent != h.own {
		removeStale(parent)
	}
	dir := filepath.Join(parent, limitName())
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make a cgroup in %s: %w", parent, errWords(err))
	}
	lc := &limitCgroups{v2: true, limits: l, cgs: []*cgroup{{v2: true, dir: dir, rel: h.rel(dir), fd: -1}}, fd: -1}
	fail := func(err error) (*limitCgroups, error) {
		lc.remove(time.Now().Add(time.Second))
		return nil, err
	}
	if l.Memory > 0 {
		if err := writeFile(dir, "memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return fail(err)
		}
		// Swap is not counted past the limit.
		if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
			if err := writeFile(dir, "memory.swap.max", "0"); err != nil {
				return fail(err)
			}
		}
	}
	if l.Tasks > 0 {
		if err := writeFile(dir, "pids.max", strconv.Itoa(l.Tasks)); err != nil {
			return fail(err)
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", dir, err))
	}
	lc.fd = fd
	return lc, nil
}

func newV1Limits(l Limits) (*limitCgroups, error) {
	h := hierarchies()
	lc := &limitCgroups{limits: l, fd: -1}
	fail := func(err error) (*limitCgroups, error) {
		lc.remove(time.Now().Add(time.Second))
		return nil, err
	}
	name := limitName()
	if l.Memory > 0 {
		if h.v1mem.own == "" {
			return fail(errors.New("no cgroup v1 memory hierarchy with this process's cgroup in it"))
		}
		dir := filepath.Join(h.v1mem.own, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(fmt.Errorf("make a memory cgroup in %s: %w", h.v1mem.own, errWords(err)))
		}
		lc.cgs = append(lc.cgs, &cgroup{ctrl: "memory", dir: dir, rel: h.v1mem.rel(dir), fd: -1})
		v := strconv.FormatInt(l.Memory, 10)
		if err := writeFile(dir, "memory.limit_in_bytes", v); err != nil {
			return fail(err)
		}
		// Where swap is accounted, memory and swap together get the same
		// limit: swap is not used past it.
		if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
			if err := writeFile(dir, "memory.memsw.limit_in_bytes", v); err != nil {
				return fail(err)
			}
		}
	}
	if l.Tasks > 0 {
		if h.v1.own == "" {
			return fail(errors.New("no cgroup v1 pids hierarchy with this process's cgroup in it"))
		}
		dir := filepath.Join(h.v1.own, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(fmt.Errorf("make a pids cgroup in %s: %w", h.v1.own, errWords(err)))
		}
		lc.cgs = append(lc.cgs, &cgroup{ctrl: "pids", dir: dir, rel: h.v1.rel(dir), fd: -1})
		if err := writeFile(dir, "pids.max", strconv.Itoa(l.Tasks)); err != nil {
			return fail(err)
		}
	}
	return lc, nil
}

func writeFile(dir, file, v string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("set %s to %s in %s: %w", file, v, dir, errWords(err))
	}
	return nil
}

// errWords strips the path an *fs.PathError repeats.
func errWords(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// joins are the v1 cgroups the forking thread joins for the fork.
func (lc *limitCgroups) joins() []*cgroup {
	if lc == nil || lc.v2 {
		return nil
	}
	return lc.cgs
}

// read reads the kernel's counters, or returns those read last before the
// cgroups were removed.
func (lc *limitCgroups) read() CgroupStats {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.final != nil {
		return *lc.final
	}
	return lc.readFiles()
}

// finish reads the counters one last time, for read to return once the
// cgroups are gone.
func (lc *limitCgroups) finish() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.final == nil {
		st := lc.readFiles()
		st.Final = true
		lc.final = &st
	}
}

func (lc *limitCgroups) readFiles() CgroupStats {
	var v2, memory, pids string
	for _, cg := range lc.cgs {
		switch {
		case cg.v2:
			v2 = cg.dir
		case cg.ctrl == "memory":
			memory = cg.dir
		default:
			pids = cg.dir
		}
	}
	if lc.v2 {
		return ReadCgroupStats(lc.limits, v2, "", "")
	}
	return ReadCgroupStats(lc.limits, "", memory, pids)
}

// ReadCgroupStats reads the kernel's counters of the cgroups that enforce
// lim, as LimitStats reports them: v2 is a cgroup v2 directory; without
// one, memory and pids are cgroup v1 directories of those controllers
// ("" for one that is not there). A launch's limit cgroups and a
// container's (container mode) are read the same way.
func ReadCgroupStats(lim Limits, v2, memory, pids string) CgroupStats {
	st := CgroupStats{Version: 1, Limits: lim, MemoryFile: "memory.limit_in_bytes", MemoryPeak: -1, TasksPeak: -1}
	if v2 != "" {
		st.Version, st.MemoryFile = 2, "memory.max"
		st.MemoryPeak = readInt(v2, "memory.peak", -1)
		ev := readKeyed(v2, "memory.events")
		st.LimitHits, st.OOMKills = ev["max"], ev["oom_kill"]
		st.TasksPeak = readInt(v2, "pids.peak", -1)
		st.TasksRefused = readKeyed(v2, "pids.events")["max"]
		return st
	}
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

// ReadCgroupValue reads a cgroup file that holds one number (pids.current,
// memory.current, …); def when it cannot.
func ReadCgroupValue(dir, file string, def int64) int64 { return readInt(dir, file, def) }

// readInt reads a file that holds one number; def when it cannot.
func readInt(dir, file string, def int64) int64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return def
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return def
	}
	return v
}

// readKeyed reads a file of "key value" lines.
func readKeyed(dir, file string) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// remove removes the cgroups once they are empty, waiting at most until
// deadline; it closes the v2 directory.
func (lc *limitCgroups) remove(deadline time.Time) error {
	var errs []error
	for _, cg := range lc.cgs {
		if err := cg.remove(deadline); err != nil {
			errs = append(errs, err)
		}
	}
	if lc.fd >= 0 {
		unix.Close(lc.fd)
		lc.fd = -1
	}
	return errors.Join(errs...)
}

// LimitStats returns what the kernel counted in the launch's limit
// cgroups: read now, or, once Cleanup removed them, read just before. ok
// is false for a launch without limits.
func (p *Process) LimitStats() (st CgroupStats, ok bool) {
	if p.sys.lim == nil {
		return CgroupStats{}, false
	}
	return p.sys.lim.read(), true
}
