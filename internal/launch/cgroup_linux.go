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

// A tracking cgroup holds a launch's program and, whatever they do (setsid,
// env -i, double fork), all its descendants: nothing leaves a cgroup but by
// being moved by a privileged process. It is made for each launch, under
// this process's own cgroup (so that launchers nest), and removed by
// Cleanup.
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
type cgroup struct {
	v2  bool
	dir string // absolute path
	rel string // path as /proc/PID/cgroup shows it
	fd  int    // v2: the open directory to clone into; -1 otherwise
}

// trackingEnv forces the kind of tracking cgroup: "v2", "v1" or "none"
// (for tests and for machines where the automatic choice misbehaves).
const trackingEnv = "OE_RT_LAUNCH_TRACKING"

var cgroupSeq atomic.Int64

// hierarchy is a mounted cgroup hierarchy: a cgroup whose path in
// /proc/PID/cgroup is rel is the directory mnt + (rel less root).
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

// hierarchies are where this process may make tracking cgroups, found
// once, with own the cgroup of this process in each.
var hierarchies = sync.OnceValue(func() (h struct{ v2, v1 hierarchy }) {
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
		case b[0] == "cgroup2" && h.v2.mnt == "":
			if p, ok := own[""]; ok {
				if x.own = x.dir(p); x.own != "" {
					h.v2 = x
				}
			}
		case b[0] == "cgroup" && h.v1.mnt == "" && hasOpt(b[2], "pids"):
			if p, ok := own["pids"]; ok {
				if x.own = x.dir(p); x.own != "" {
					h.v1 = x
				}
			}
		}
	}
	removeStale(h.v2.own)
	removeStale(h.v1.own)
	return h
})

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

// newCgroup makes the tracking cgroup of a launch, or says why there is
// none.
func newCgroup(parentFD int) (*cgroup, string) {
	mode := os.Getenv(trackingEnv)
	if mode == "none" {
		return nil, "no tracking cgroup (" + trackingEnv + "=none)"
	}
	h := hierarchies()
	name := fmt.Sprintf("oe-rt-launch.%d.%d", selfPid, cgroupSeq.Add(1))
	var why []string
	if mode == "" || mode == "v2" {
		parent := h.v2.own
		if parentFD > 0 {
			parent, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(parentFD))
		}
		switch {
		case parent == "" || h.v2.rel(parent) == "":
			why = append(why, "no cgroup v2 found")
		default:
			dir := filepath.Join(parent, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				why = append(why, fmt.Sprintf("cgroup v2: %v", err))
				break
			}
			fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				_ = os.Remove(dir)
				why = append(why, fmt.Sprintf("cgroup v2: %v", err))
				break
			}
			return &cgroup{v2: true, dir: dir, rel: h.v2.rel(dir), fd: fd}, ""
		}
	}
	if mode == "" || mode == "v1" {
		if h.v1.own == "" {
			why = append(why, "no cgroup v1 pids hierarchy")
		} else {
			dir := filepath.Join(h.v1.own, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				why = append(why, fmt.Sprintf("cgroup v1: %v", err))
			} else {
				return &cgroup{dir: dir, rel: h.v1.rel(dir), fd: -1}, ""
			}
		}
	}
	return nil, "no tracking cgroup (" + strings.Join(why, "; ") + ")"
}

func (c *cgroup) String() string {
	if c.v2 {
		return "cgroup v2 " + c.dir
	}
	return "cgroup v1 " + c.dir
}

// members returns the PIDs in the cgroup and the cgroups below it (a
// launcher started by this one nests its own there).
func (c *cgroup) members() []int {
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

// contains reports whether /proc/PID/cgroup puts pid in the cgroup or
// below it (v2 shows a zombie where it died; v1 does not).
func (c *cgroup) contains(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if c.v2 && !(f[0] == "0" && f[1] == "") || !c.v2 && !hasOpt(f[1], "pids") {
			continue
		}
		return f[2] == c.rel || strings.HasPrefix(f[2], c.rel+"/")
	}
	return false
}

// kill kills everything in the cgroup at once where the kernel can
// (cgroup v2's cgroup.kill); it reports whether it did.
func (c *cgroup) kill() bool {
	if !c.v2 {
		return false
	}
	return os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0) == nil
}

// populated reports whether a process (zombies included, on v2) is still
// in the cgroup or below.
func (c *cgroup) populated() bool {
	if c.v2 {
		b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
		if err == nil {
			return bytes.Contains(b, []byte("populated 1"))
		}
	}
	return len(c.members()) > 0
}

// remove removes the cgroup (and any below it) once it is empty, waiting
// at most until deadline.
func (c *cgroup) remove(deadline time.Time) error {
	for {
		err := rmdirTree(c.dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			if c.fd >= 0 {
				unix.Close(c.fd)
				c.fd = -1
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove %s: %w", c.dir, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

// threadCgroupV1 returns the v1 pids cgroup of the calling thread, as a
// directory.
func threadCgroupV1() (string, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && hasOpt(f[1], "pids") {
			if d := hierarchies().v1.dir(f[2]); d != "" {
				return d, nil
			}
		}
	}
	return "", errors.New("the thread's pids cgroup is not visible")
}
