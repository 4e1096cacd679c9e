package launch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A launch's cgroups — its tracking cgroup, its limit cgroups — sit behind
// one interface, cgroupManager, as runc's cgroups.Manager keeps cgroup v1
// and v2 apart from its users: v2Cgroups (cgroup_v2_linux.go) and
// v1Cgroups (cgroup_v1_linux.go) implement it. Which one a launch gets is
// chosen once, when the launch is made (newTracking, newLimits: by what
// the machine allows, or by OE_RT_LAUNCH_TRACKING and OE_RT_LAUNCH_LIMITS);
// from then on Start, the sampler, Cleanup and the guard speak only to the
// interface. The hierarchies are found once per process (cgroupHost, in
// the host value Init makes).
//
// A tracking cgroup holds a launch's program and, whatever they do
// (setsid, env -i, double fork), all its descendants: nothing leaves a
// cgroup but by being moved by a privileged process. It is made for each
// launch, under this process's own cgroup (so that launchers nest), and
// removed by Cleanup.
//
//   - cgroup v2, where this process may create a cgroup beside itself (root,
//     or a delegated subtree): the program is cloned straight into it
//     (CLONE_INTO_CGROUP), Cleanup writes cgroup.kill (Linux 5.14+). With
//     Spec.CgroupFD it is made inside that cgroup, so its limits apply.
//   - cgroup v1, where the pids hierarchy is writable: the launcher's forking
//     thread joins the cgroup for the fork (a v1 cgroup holds threads), so
//     the child is born in it, and goes back.
//   - neither: no tracking cgroup; see the package comment for what is
//     found then.
type cgroupManager interface {
	// Version is 1 or 2.
	Version() int
	// Apply readies the fork of the program so that it is born in the
	// cgroups: cloned into them (v2, CLONE_INTO_CGROUP), or forked by a
	// thread that joined them (v1). (runc's Apply moves a PID in; a
	// program moved after its birth may have forked before.)
	Apply(j *forkJob)
	// Set sets the limits of l that are not 0 (memory, tasks).
	Set(l Limits) error
	// Pids returns the PIDs in the cgroups and in those below them (a
	// launcher started by the launch nests its own there).
	Pids() []int
	// Contains reports whether /proc/PID/cgroup puts pid in the cgroups
	// or below them. A v2 cgroup shows a zombie where it died; v1 does not.
	Contains(pid int) bool
	// Kill kills everything in the cgroups at once where the kernel can
	// (cgroup v2's cgroup.kill); it reports whether it did.
	Kill() bool
	// Populated reports whether a process (zombies included, on v2) is
	// still in the cgroups or below.
	Populated() bool
	// Stats returns the kernel's counters of the limits the cgroups
	// enforce (memory peak, limit hits, OOM kills, tasks refused): read
	// now, or, once Destroy removed them, read just before.
	Stats() CgroupStats
	// Destroy reads the counters one last time, then removes the cgroups
	// (and any below them) once they are empty, waiting at most until
	// deadline; it closes what it holds open.
	Destroy(deadline time.Time) error
	// Paths are the cgroups' directories, for the guard.
	Paths() []cgroupPath
	String() string
}

// cgroupPath is one cgroup directory of a manager, as the guard is told of
// it: kind is "v2", "v1" (the pids hierarchy) or "v1:CONTROLLER".
type cgroupPath struct {
	kind string
	dir  string // absolute path
	rel  string // path as /proc/PID/cgroup shows it
}

// managerFor makes the manager of a cgroup the guard was told of; nil for
// kind "-".
func managerFor(cp cgroupPath) cgroupManager {
	d := cgroupDir{dir: cp.dir, rel: cp.rel, fd: -1}
	switch {
	case cp.kind == "v2":
		return &v2Cgroups{cgroupDir: d}
	case cp.kind == "v1":
		return &v1Cgroups{dirs: []v1Dir{{ctrl: "pids", cgroupDir: d}}}
	case strings.HasPrefix(cp.kind, "v1:"):
		return &v1Cgroups{dirs: []v1Dir{{ctrl: strings.TrimPrefix(cp.kind, "v1:"), cgroupDir: d}}}
	}
	return nil
}

// trackingEnv forces the kind of tracking cgroup: "v2", "v1" or "none"
// (for tests and for machines where the automatic choice misbehaves).
const trackingEnv = "OE_RT_LAUNCH_TRACKING"

// newTracking makes the tracking cgroup of a launch, or says why there is
// none: inside the cgroup v2 open as parentFD (0: beside this process).
// With noV1, no v1 tracking cgroup is made (the launch's v1 limit cgroups
// track it: a thread is in one cgroup of each v1 hierarchy).
func (ch *cgroupHost) newTracking(parentFD int, noV1 bool) (cgroupManager, string) {
	mode := os.Getenv(trackingEnv)
	if mode == "none" {
		return nil, "no tracking cgroup (" + trackingEnv + "=none)"
	}
	var why []string
	if mode == "" || mode == "v2" {
		m, err := ch.newV2Tracking(parentFD)
		if err == nil {
			return m, ""
		}
		why = append(why, err.Error())
	}
	if noV1 && (mode == "" || mode == "v1") {
		why = append(why, "cgroup v1: the launch's limit cgroups track it")
	} else if mode == "" || mode == "v1" {
		m, err := ch.newV1Tracking()
		if err == nil {
			return m, ""
		}
		why = append(why, err.Error())
	}
	return nil, "no tracking cgroup (" + strings.Join(why, "; ") + ")"
}

// cgroupHost is where this process may make cgroups: the hierarchies,
// found once (and the stale cgroups of dead launchers removed then), and
// the sequence in the cgroups' names.
type cgroupHost struct {
	hierarchies func() hierarchies
	seq         atomic.Int64
}

func newCgroupHost() *cgroupHost {
	return &cgroupHost{hierarchies: sync.OnceValue(findHierarchies)}
}

// name is the name of a new cgroup of this launcher.
func (ch *cgroupHost) name() string {
	return fmt.Sprintf("oe-rt-launch.%d.%d", selfPid, ch.seq.Add(1))
}

// hierarchies are the mounted hierarchies with this process's cgroup in
// them: cgroup v2, and cgroup v1's pids and memory hierarchies.
type hierarchies struct{ v2, v1, v1mem hierarchy }

// hierarchy is a mounted cgroup hierarchy: a cgroup whose path in
// /proc/PID/cgroup is rel is the directory mnt + (rel less root); own is
// this process's cgroup in it.
type hierarchy struct{ mnt, root, own string }

// dir returns the directory of the cgroup at rel, or "" when it is not
// visible under the mount.
func (h hierarchy) dir(rel string) string {
	if h.mnt == "" {
		return ""
	}
	if h.root != "/" {
		if rel != h.root && !strings.HasPrefix(rel, h.root+"/") {
			return ""
		}
		rel = strings.TrimPrefix(rel, h.root)
	}
	return filepath.Join(h.mnt, rel)
}

// rel returns the path in /proc/PID/cgroup of the cgroup directory dir, or
// "" when dir is not under the mount.
func (h hierarchy) rel(dir string) string {
	if h.mnt == "" || (dir != h.mnt && !strings.HasPrefix(dir, h.mnt+"/")) {
		return ""
	}
	return filepath.Join("/", h.root, strings.TrimPrefix(dir, h.mnt))
}

// findHierarchies reads /proc/self/cgroup and mountinfo, and removes the
// stale cgroups of dead launchers beside this process's own.
func findHierarchies() (h hierarchies) {
	cg, _ := os.ReadFile("/proc/self/cgroup")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	own := map[string]string{} // "" for v2, controller for v1 -> path
	for _, l := range strings.Split(string(cg), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			own[""] = f[2]
		}
		for _, c := range strings.Split(f[1], ",") {
			own[c] = f[2]
		}
	}
	// take sets *dst to x if it is the first such mount and this process's
	// cgroup of key is visible in it.
	take := func(dst *hierarchy, x hierarchy, key string) {
		if dst.mnt != "" {
			return
		}
		if p, ok := own[key]; ok {
			if x.own = x.dir(p); x.own != "" {
				*dst = x
			}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		x := hierarchy{mnt: unescapeMount(a[4]), root: a[3]}
		switch {
		case b[0] == "cgroup2":
			take(&h.v2, x, "")
		case b[0] == "cgroup" && hasOpt(b[2], "pids"):
			take(&h.v1, x, "pids")
		case b[0] == "cgroup" && hasOpt(b[2], "memory"):
			take(&h.v1mem, x, "memory")
		}
	}
	removeStale(h.v2.own)
	removeStale(h.v1.own)
	removeStale(h.v1mem.own)
	return h
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// staleAge is how old an orphaned tracking cgroup must be to be removed.
const staleAge = 10 * time.Minute

var staleName = regexp.MustCompile(`^oe-rt-launch\.(\d+)\.\d+$`)

// removeStale removes the empty tracking cgroups of launchers that are
// gone (a launcher killed before its guard could remove them).
func removeStale(dir string) {
	if dir == "" {
		return
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // its launcher (or a process with its PID) lives
		}
		// A launcher in another PID namespace is not in this /proc: leave
		// young cgroups alone (one may be about to receive a child).
		if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < staleAge {
			continue
		}
		_ = rmdirTree(filepath.Join(dir, e.Name()))
	}
}

// threadCgroupV1 returns the calling thread's cgroup in the v1 hierarchy
// of ctrl ("pids", "memory"), as a directory.
func (ch *cgroupHost) threadCgroupV1(ctrl string) (string, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return "", err
	}
	h := ch.hierarchies().v1
	if ctrl == "memory" {
		h = ch.hierarchies().v1mem
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && hasOpt(f[1], ctrl) {
			if d := h.dir(f[2]); d != "" {
				return d, nil
			}
		}
	}
	return "", errors.New("the thread's " + ctrl + " cgroup is not visible")
}

// cgroupDir is one cgroup directory, what cgroup v1 and v2 have alike.
type cgroupDir struct {
	dir string // absolute path
	rel string // path as /proc/PID/cgroup shows it
	fd  int    // the open directory (v2: to clone into, or to nest in); -1 when none
}

// pids returns the PIDs in the cgroup and the cgroups below it.
func (c *cgroupDir) pids() []int {
	var out []int
	_ = filepath.WalkDir(c.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// holds reports whether a /proc/PID/cgroup path is the cgroup or below it.
func (c *cgroupDir) holds(path string) bool {
	return path == c.rel || strings.HasPrefix(path, c.rel+"/")
}

// procCgroup returns pid's cgroup path in the hierarchy whose
// /proc/PID/cgroup line match accepts (hierarchy ID, controllers).
func procCgroup(pid int, match func(id, ctrls string) bool) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && match(f[0], f[1]) {
			return f[2], true
		}
	}
	return "", false
}

// remove removes the cgroup (and any below it) once it is empty, waiting
// at most until deadline, and closes its directory.
func (c *cgroupDir) remove(deadline time.Time) error {
	for {
		err := rmdirTree(c.dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			c.close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove %s: %w", c.dir, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *cgroupDir) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// mkdir makes the cgroup name in parent; open also opens it.
func mkdir(parent, name string, open bool) (cgroupDir, error) {
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return cgroupDir{}, err
	}
	c := cgroupDir{dir: dir, fd: -1}
	if open {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			_ = os.Remove(dir)
			return cgroupDir{}, err
		}
		c.fd = fd
	}
	return c, nil
}

// rmdirTree removes dir and the directories below it, deepest first (a
// cgroup's files are not removable; rmdir of an empty cgroup is).
func rmdirTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return unix.Rmdir(dir)
}

// limitCounters keeps the counters of a launch's limit cgroups read just
// before they were removed; nil for a tracking cgroup.
type limitCounters struct {
	limits Limits
	mu     sync.Mutex
	final  *CgroupStats
}

// stats returns read(), or the counters kept.
func (lc *limitCounters) stats(read func() CgroupStats) CgroupStats {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.final != nil {
		return *lc.final
	}
	return read()
}

// finish keeps the counters read now, for stats to return once the cgroups
// are gone.
func (lc *limitCounters) finish(read func() CgroupStats) {
	if lc == nil {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.final == nil {
		st := read()
		st.Final = true
		lc.final = &st
	}
}
