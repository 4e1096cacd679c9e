package launch

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec says what to start.
type Spec struct {
	// Path is the program. A name without a slash is looked up in the PATH
	// of this program (as a shell would); a relative path with a slash is
	// relative to this program's working directory, not to Dir.
	Path string
	// Args are the program's arguments (without argv[0]).
	Args []string
	// Argv0 is argv[0] as the program sees it; empty means Path. The
	// master sets the instance name there.
	Argv0 string
	// Dir is the working directory; empty means the current one.
	Dir string
	// Env is the whole environment of the program. The launcher adds its
	// marker (CookieEnv) and removes its own internal variables.
	Env []string
	// TailBytes bounds what is kept of each of stdout and stderr, both as
	// raw bytes and as lines; 0 means 64 KiB.
	TailBytes int
	// SampleEvery is the interval of the /proc sampler; 0 means 20 ms.
	SampleEvery time.Duration
	// CgroupFD, when > 0, is an open cgroup v2 directory to start the
	// program in (its limits apply). Where it can, the launcher makes its
	// tracking cgroup a child of it, so the limits still apply.
	CgroupFD int
	// MasterGroup starts the program in the process group of a stand-in
	// for the master, as Baetyl's master starts an instance in its own
	// group, instead of a group of the program's own: the stand-in, a
	// process of the launcher's that only waits, records every signal that
	// reaches it (Process.GroupSignals). It is never a member of the
	// launch; Cleanup ends it.
	MasterGroup bool
	// Limits, when set, are enforced by a cgroup of the launch's own, which
	// the program is born in (see the package comment). Start fails with a
	// *LimitError when they cannot be enforced; it never starts the program
	// without them.
	Limits *Limits
}

// Limits are the resource limits of one launch, as a container runtime
// sets them for one container.
type Limits struct {
	// Memory is the most memory the kernel charges the launch, in bytes:
	// cgroup v2 memory.max (with memory.swap.max 0), cgroup v1
	// memory.limit_in_bytes (and memory.memsw.limit_in_bytes, where swap is
	// accounted, so that swap is not used past it). 0: no memory limit.
	Memory int64
	// Tasks is the most processes and threads the launch may have at once
	// (pids.max). 0: no limit.
	Tasks int
}

// LimitError says why limits cannot be enforced on this machine, and what
// would make it possible.
type LimitError struct {
	// Reason says what is missing, naming the files at fault.
	Reason string
	// Fix says what would make it possible.
	Fix string
}

func (e *LimitError) Error() string {
	if e.Fix == "" {
		return "cannot enforce limits: " + e.Reason
	}
	return "cannot enforce limits: " + e.Reason + "; " + e.Fix
}

// CgroupStats is what the kernel counted in a launch's limit cgroup.
type CgroupStats struct {
	// Version is 1 or 2.
	Version int
	// Limits are the limits in force.
	Limits Limits
	// MemoryFile names the file that holds the memory limit:
	// "memory.max" (v2) or "memory.limit_in_bytes" (v1).
	MemoryFile string
	// MemoryPeak is the most memory the kernel charged the cgroup at once
	// (memory.peak, memory.max_usage_in_bytes), in bytes; -1 when the
	// kernel does not say (memory.peak came with Linux 5.19).
	MemoryPeak int64
	// LimitHits counts how often the charge reached the limit and the
	// kernel had to reclaim (v2 memory.events "max", v1 memory.failcnt).
	LimitHits int64
	// OOMKills counts the processes the kernel's OOM killer killed in the
	// cgroup (v2 memory.events "oom_kill", v1 memory.oom_control
	// "oom_kill").
	OOMKills int64
	// TasksPeak is the most processes and threads the cgroup held at once
	// (pids.peak); -1 when the kernel does not say.
	TasksPeak int64
	// TasksRefused counts the forks and thread creations the kernel
	// refused at pids.max (pids.events "max").
	TasksRefused int64
	// Final is true when these were read after the launch ended, just
	// before its cgroups were removed.
	Final bool
}

// MaxLineBytes is the longest line kept in the line rings; the rest of a
// longer line is dropped and the line is marked Cut.
const MaxLineBytes = 4 << 10

// CookieEnv is the environment variable that marks a started program and
// the descendants that keep its environment. Its value is a comma-separated
// list of launch tokens: a launcher started by a launcher adds its own token
// to the one it inherited, so that both can find the processes.
const CookieEnv = "OE_RT_LAUNCH_COOKIE"

// Process is a started program. Its methods are safe for concurrent use.
type Process struct {
	// Pid is the program's process ID. It is only signalled through the
	// process handle (a pidfd), never after it was reaped.
	Pid int
	// Started is when the program was started (just before the fork and
	// exec).
	Started time.Time

	sys    procSys // the platform's part
	out    [2]*stream
	seq    atomic.Uint64 // orders lines across the two streams
	done   chan struct{}
	exit   Exit // set before done is closed
	mu     sync.Mutex
	usage  Usage
	cookie string // this launch's token
}

// Exit describes how the program ended.
type Exit struct {
	// Code is the exit status, or -1 when a signal ended the program.
	Code int
	// Signal is the signal that ended the program; 0 when it exited.
	Signal syscall.Signal
	// Core is true when the program dumped core.
	Core bool
	// At is when the program exited (seen as exited by the launcher, before
	// it reaped it); it does not wait for the output pipes to close.
	At time.Time
}

// String says how the program ended: "exit status 3", "killed by SIGKILL",
// "terminated by SIGTERM (default action)", "killed by SIGSEGV (core
// dumped)".
func (e Exit) String() string {
	if e.Signal == 0 {
		return "exit status " + strconv.Itoa(e.Code)
	}
	name := signalName(e.Signal)
	var s string
	switch {
	case e.Signal == syscall.Signal(9): // SIGKILL on every platform that has signals
		s = "killed by " + name
	case coreAction(e.Signal) || e.Core:
		s = "killed by " + name
	default:
		s = "terminated by " + name + " (default action)"
	}
	if e.Core {
		s += " (core dumped)"
	}
	return s
}

// coreAction reports whether sig's default action dumps core (signal(7)).
func coreAction(sig syscall.Signal) bool {
	switch signalName(sig) {
	case "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGSEGV", "SIGSYS", "SIGXCPU", "SIGXFSZ":
		return true
	}
	return false
}

// Line is one line the program wrote.
type Line struct {
	// At is when the first byte of the line was read.
	At time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Text is the line without its newline (and without a "\r" before
	// it). A line longer than MaxLineBytes is cut to that length.
	Text string
	// Cut is true when the rest of the line was dropped.
	Cut bool
}

// Usage is what the sampler saw.
type Usage struct {
	// PeakRSS is the largest resident set of the program and its
	// descendants, in bytes: the larger of the largest total the samples
	// saw and the sum of each process's own peak (VmHWM, which the kernel
	// keeps from the process's exec on, so that a peak between samples is
	// not missed; for a tree whose processes peak at different times the
	// sum is an upper bound).
	PeakRSS int64
	// AtPeak splits the largest total RSS a sample saw.
	AtPeak RSS
	// PeakUnreclaimable is the largest total of RssAnon + RssShmem of the
	// program and its descendants: the memory a limit cannot take back
	// (without swap), where file-backed pages (RssFile: the program's own
	// code, mapped files) are reclaimed under a limit and read again.
	PeakUnreclaimable int64
	// PeakThreads is the largest total thread count of the same, and
	// ZombiesAtPeak how many of those counted, at the latest sample with
	// that count, were zombies (processes that ended and were not waited
	// for, each still holding a PID: zombies for ZombieAge or more, see
	// ZombieWatch).
	PeakThreads   int
	ZombiesAtPeak int
	// Samples is how many samples saw the program; 0 means nothing could be
	// measured (no /proc).
	Samples int
	// First and Last are when the first and the last of those samples were
	// taken.
	First, Last time.Time
}

// RSS is a resident set split by kind, in bytes, as /proc/PID/status
// shows it (RssAnon, RssFile, RssShmem).
type RSS struct {
	Anon, File, Shmem int64
}

// Unreclaimable is Anon + Shmem.
func (r RSS) Unreclaimable() int64 { return r.Anon + r.Shmem }

// GroupSignal is a signal that reached the master's stand-in
// (Spec.MasterGroup): one sent to the program's process group.
type GroupSignal struct {
	// Signal is the signal.
	Signal syscall.Signal
	// At is when the launcher learnt of it.
	At time.Time
}

// Proc is one process as /proc shows it.
type Proc struct {
	Pid  int
	PPid int
	// State is the state letter of /proc/PID/stat: R, S, D, T (stopped),
	// Z (zombie), ...
	State byte
	// Start is the start time in clock ticks since boot: it tells a
	// recycled PID apart.
	Start   uint64
	RSS     int64 // bytes
	Threads int
	// Cmdline is the argv joined with spaces, or the command name in
	// brackets when argv is empty ("[kworker]"). Filled by Survivors and
	// Cleanup; empty in Tree and All.
	Cmdline string

	pgid, sid int
}

// ZombieAge is how long a process must have been a zombie to count as one
// that was not waited for. A child that has just exited is a zombie until
// its parent's wait() returns, microseconds later on a quiet machine (a
// shell's $(...) makes one at every start), and later on a loaded one
// where the parent waits for a CPU; a sample may fall in between.
const ZombieAge = 250 * time.Millisecond

// ZombieWatch follows the zombies of a tree's samples, to tell how many of
// the threads counted at the peak were zombies not waited for: those that
// later samples still saw as zombies ZombieAge after the first saw them.
type ZombieWatch struct {
	since  map[[2]uint64]time.Time // the last sample's zombies, first seen when
	atPeak map[[2]uint64]time.Time // the zombies of the peak's sample (its since)
	held   map[[2]uint64]bool      // those of atPeak a sample saw ZombieAge old
}

// Sample takes a sample of the tree, members, taken at now; peak says it
// holds the most threads yet, or as many as the peak (the latest such
// sample is the peak's: a tree that holds its count, as a parent with
// children it never waits for does, is judged by its latest look). It
// returns how many of the peak sample's zombies have lingered ZombieAge
// so far.
//
// It runs at every sample of every instance: a tree without zombies, the
// usual one, allocates nothing.
func (w *ZombieWatch) Sample(members []Proc, now time.Time, peak bool) int {
	var since map[[2]uint64]time.Time
	for _, m := range members {
		if m.State == 'Z' {
			k := [2]uint64{uint64(m.Pid), m.Start}
			t, ok := w.since[k]
			if !ok {
				t = now
			}
			if since == nil {
				since = map[[2]uint64]time.Time{}
			}
			since[k] = t
		}
	}
	w.since = since
	if peak {
		w.atPeak, w.held = since, nil // since is a new map at every sample
	}
	for k := range w.atPeak {
		if t, ok := since[k]; ok && now.Sub(t) >= ZombieAge {
			if w.held == nil {
				w.held = map[[2]uint64]bool{}
			}
			w.held[k] = true
		}
	}
	return len(w.held)
}

// Peak records a sample of threads in all, members, in u: the peak thread
// count, and how many of the peak's threads were zombies (Sample; a
// sample that ties with the peak is the peak's).
func (w *ZombieWatch) Peak(u *Usage, threads int, members []Proc, now time.Time) {
	peak := threads >= u.PeakThreads
	u.PeakThreads = max(u.PeakThreads, threads)
	u.ZombiesAtPeak = w.Sample(members, now, peak)
}

// ErrStart is matched (errors.Is) by every error of Start that means the
// program could not be started as asked: no such program, not executable,
// a directory, a bad #! line, no such working directory. Other errors of
// Start (no file descriptors left, fork failing) are the launcher's.
var ErrStart = errors.New("the program could not be started")

// StartError says why a program could not be started. It matches ErrStart.
type StartError struct {
	// Path is the program as it was given.
	Path string
	// Reason says what is wrong, in words a user understands, naming the
	// file at fault.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *StartError) Error() string { return "start " + e.Path + ": " + e.Reason }

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }

// Is reports whether target is ErrStart.
func (e *StartError) Is(target error) bool { return target == ErrStart }

// FreePort returns a free TCP address on 127.0.0.1.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// Done is closed as soon as the program has exited and been reaped. It
// does not wait for the output pipes, which a descendant may hold open.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the program has exited and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitStatus returns how the program ended; ok is false while it runs.
func (p *Process) ExitStatus() (e Exit, ok bool) {
	if !p.Exited() {
		return Exit{}, false
	}
	return p.exit, true
}

// Usage returns the peaks the sampler saw so far.
func (p *Process) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.usage
}

// Stdout returns the kept tail of the program's standard output.
func (p *Process) Stdout() string { return p.out[0].tail() }

// Stderr returns the kept tail of the program's standard error.
func (p *Process) Stderr() string { return p.out[1].tail() }

// OutputBytes returns how many bytes the program wrote to stdout and
// stderr in all.
func (p *Process) OutputBytes() (stdout, stderr int64) {
	return p.out[0].written(), p.out[1].written()
}

// Lines returns the kept lines of both streams whose first byte was read in
// [from, to], in the order they were read. A zero to means "until now". A
// line still being written (no newline yet) is included as it is so far.
func (p *Process) Lines(from, to time.Time) []Line {
	return mergeLines(from, to, p.out[0], p.out[1])
}

// Leftovers returns the PIDs of Survivors (kept for older callers).
func (p *Process) Leftovers() []int {
	var out []int
	for _, pr := range p.Survivors() {
		out = append(out, pr.Pid)
	}
	return out
}

// Ring keeps the last bytes written to it.
type Ring struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	total int64
}

// NewRing returns a ring of max bytes.
func NewRing(max int) *Ring { return &Ring{max: max} }

// Write keeps the tail; it never blocks and never fails.
func (r *Ring) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += int64(len(b))
	if len(b) >= r.max {
		r.buf = append(r.buf[:0], b[len(b)-r.max:]...)
		return len(b), nil
	}
	if over := len(r.buf) + len(b) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, b...)
	return len(b), nil
}

// String returns the kept tail.
func (r *Ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// Total is how many bytes were written in all.
func (r *Ring) Total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// TreeListeners returns the TCP addresses that the process root and its
// descendants listen on.
func TreeListeners(root int) ([]string, error) {
	var pids []int
	for _, p := range Tree(root) {
		pids = append(pids, p.Pid)
	}
	return Listeners(pids)
}
