package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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

// newLimits makes the cgroups that enforce l, by cgroup v2 where it can,
// else by cgroup v1, or says why it cannot and what would help.
func (ch *cgroupHost) newLimits(l Limits) (cgroupManager, error) {
	mode := os.Getenv(limitsEnv)
	var why []string
	if mode == "" || mode == "v2" {
		m, err := ch.newV2Limits(l)
		if err == nil {
			return m, nil
		}
		why = append(why, "cgroup v2: "+err.Error())
	}
	if mode == "" || mode == "v1" {
		m, err := ch.newV1Limits(l)
		if err == nil {
			return m, nil
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
// "cgroup v1"), or why it cannot (a *LimitError; also before Init). It
// makes the cgroups and removes them at once.
func CheckLimits() (string, error) {
	h, err := current()
	if err != nil {
		return "", &LimitError{Reason: err.Error()}
	}
	m, err := h.cgroups.newLimits(Limits{Memory: 1 << 30, Tasks: 1 << 12})
	if err != nil {
		return "", err
	}
	_ = m.Destroy(time.Now().Add(time.Second))
	return fmt.Sprintf("cgroup v%d", m.Version()), nil
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

// ReadCgroupStats reads the kernel's counters of the cgroups that enforce
// lim, as LimitStats reports them: v2 is a cgroup v2 directory; without
// one, memory and pids are cgroup v1 directories of those controllers
// ("" for one that is not there). A launch's limit cgroups and a
// container's (container mode) are read the same way.
func ReadCgroupStats(lim Limits, v2, memory, pids string) CgroupStats {
	if v2 != "" {
		return readV2Stats(lim, v2)
	}
	return readV1Stats(lim, memory, pids)
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

// LimitStats returns what the kernel counted in the launch's limit
// cgroups: read now, or, once Cleanup removed them, read just before. ok
// is false for a launch without limits.
func (p *Process) LimitStats() (st CgroupStats, ok bool) {
	if p.sys.lim == nil {
		return CgroupStats{}, false
	}
	return p.sys.lim.Stats(), true
}
