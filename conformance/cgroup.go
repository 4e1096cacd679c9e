package conformance

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// Enforced limits (--limit-memory, --limit-threads): every instance runs
// in cgroups of its own, as a container runtime limits one instance, made
// and removed by the launcher (internal/launch: Spec.Limits), with the
// runtime born in them. The kernel's counters say what the limits did:
// the peak memory charged, how often it reached the limit, OOM kills,
// forks and thread creations refused.

// limitsDoc is where the manual says how to run the limits.
const limitsDoc = "docs/conformance.md#enforced-limits"

// openLimits decides how the run enforces its limits, or records why it
// cannot (resources.limits reports it; the run goes on, measured).
func (r *runner) openLimits() {
	kind, err := launch.CheckLimits()
	if err != nil {
		r.log.Warn("limits cannot be enforced", "reason", err.Error())
		r.limitErr = err
		return
	}
	r.limits = &launch.Limits{Memory: r.cfg.MemoryLimit, Tasks: r.cfg.ThreadLimit}
	r.limitKind = kind
	r.log.Debug("limits enforced", "by", kind, "memory", r.cfg.MemoryLimit, "tasks", r.cfg.ThreadLimit)
}

// enforced reports whether the instances run under enforced limits.
func (r *runner) enforced() bool { return r.limits != nil }

// limitSize renders a limit: "50 MiB", "1.5 MiB", "512 KiB".
func limitSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return size(n)
}

// memoryLimitWords names the memory limit as the kernel holds it:
// "memory.max 50 MiB", "memory.limit_in_bytes 50 MiB".
func memoryLimitWords(st launch.CgroupStats) string {
	return st.MemoryFile + " " + limitSize(st.Limits.Memory)
}

// exitText says how an instance ended, with what its limits did to it:
// "killed by the kernel's OOM killer under memory.max 50 MiB (cgroup peak
// 50.0 MiB)", or "exit status 2; pids.max 20 refused 1 thread or process
// creation (stderr: …)". oom is true when the OOM killer ended it;
// limited when its limits ended it: an OOM kill, or a thread or process
// refused before it ended by itself.
func (inst *instance) exitText(x launch.Exit, byItself bool) (words string, oom, limited bool) {
	words = x.String()
	st, ok := inst.proc.LimitStats()
	if !ok {
		return words, false, false
	}
	limited = byItself && (st.OOMKills > 0 || st.TasksRefused > 0)
	if st.OOMKills > 0 {
		peak := ""
		if st.MemoryPeak >= 0 {
			peak = fmt.Sprintf(" (cgroup peak %s)", mib(st.MemoryPeak))
		}
		if x.Signal == syscall.SIGKILL && byItself {
			return fmt.Sprintf("killed by the kernel's OOM killer under %s%s", memoryLimitWords(st), peak), true, true
		}
		words += fmt.Sprintf("; the kernel's OOM killer killed %s of its launch under %s%s",
			plural(int(st.OOMKills), "a process", fmt.Sprintf("%d processes", st.OOMKills)), memoryLimitWords(st), peak)
	}
	if st.TasksRefused > 0 {
		words += "; " + refusedWords(st)
		if l := inst.threadComplaint(); l != "" {
			words += fmt.Sprintf(" (stderr: %q)", l)
		}
	}
	return words, false, limited
}

// refusedWords: "pids.max 20 refused 3 thread or process creations".
func refusedWords(st launch.CgroupStats) string {
	return fmt.Sprintf("pids.max %d refused %d thread or process %s", st.Limits.Tasks, st.TasksRefused,
		plural(int(st.TasksRefused), "creation", "creations"))
}

// threadFailure matches what runtimes write when a thread or process
// cannot be created: Go, glibc's pthread_create, Python, Node/libuv, fork.
var threadFailure = regexp.MustCompile(`(?i)failed to create new OS thread|pthread_create|can't start new thread|Resource temporarily unavailable|EAGAIN|errno=11|fork: retry|cannot allocate memory`)

// threadComplaint returns the first line of the instance's stderr (its
// kept tail) that says a thread or process could not be created, cut to
// 200 bytes, or "".
func (inst *instance) threadComplaint() string {
	for _, l := range strings.Split(inst.proc.Stderr(), "\n") {
		if threadFailure.MatchString(l) {
			t := strings.TrimSpace(l)
			if len(t) > 200 {
				t = t[:200] + "…"
			}
			return t
		}
	}
	return ""
}

// notEnforcedWords says why limits asked for are not enforced and what
// would make it possible.
func (r *runner) notEnforcedWords() string {
	var le *launch.LimitError
	if errors.As(r.limitErr, &le) {
		return fmt.Sprintf("this machine cannot enforce the limits: %s; %s (%s)", le.Reason, le.Fix, limitsDoc)
	}
	return fmt.Sprintf("this machine cannot enforce the limits: %v (%s)", r.limitErr, limitsDoc)
}
