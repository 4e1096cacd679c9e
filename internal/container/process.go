package container

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// Process is a started container seen as a runtimeproc.Process: its PID is
// the host's PID of the container's first process (State.Pid), its exit
// what the engine reports (ContainerWait, then ContainerInspect: the exit
// code, OOMKilled, FinishedAt), its output what an attach made before the
// start reads (demultiplexed, time-stamped as read), its resources the
// container's cgroup and its /proc tree.
type Process struct {
	l        *Launcher
	id, name string
	created  time.Time
	started  time.Time
	pid      int
	pidStart uint64
	cg       cgroups
	limits   launch.Limits
	out      *launch.Output

	attach     func()
	waitCancel context.CancelFunc
	outDone    chan struct{}
	sampled    chan struct{} // closed when the sampler has stopped

	done chan struct{}

	mu        sync.Mutex
	exit      launch.Exit
	exitKnown bool
	oomKilled bool
	usage     launch.Usage
	stats     launch.CgroupStats
	statsOK   bool
	tasksMax  int64 // the most pids.current read (cgroup v1 keeps no peak)
	zombies   launch.ZombieWatch

	removeOnce sync.Once
	killSent   atomic.Bool // a SIGKILL was sent (or ContainerStop asked for one)
}

// ID is the container's ID.
func (p *Process) ID() string { return p.id }

// Name is the container's name.
func (p *Process) Name() string { return p.name }

// PID is the host's PID of the container's first process (0 when it ended
// before the engine said).
func (p *Process) PID() int { return p.pid }

// StartTime is when the engine started the container (State.StartedAt).
func (p *Process) StartTime() time.Time { return p.started }

// Created is when conform asked the engine to create the container.
func (p *Process) Created() time.Time { return p.created }

// Done is closed once the engine reports the container's exit.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the container has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitStatus is how the container ended, as the engine reports it. The
// engine reports a death by signal n as exit code 128+n, as a shell does:
// such a code is read as the signal.
func (p *Process) ExitStatus() (launch.Exit, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit, p.exitKnown
}

// OOMKilled reports whether the engine says the kernel's OOM killer ended
// the container.
func (p *Process) OOMKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.oomKilled
}

// Signal sends sig to the container's first process through the engine
// (ContainerKill). As PID 1 of its namespace, the process gets a signal
// from outside only when it handles it (SIGKILL and SIGSTOP always).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	if sig == syscall.SIGKILL {
		p.killSent.Store(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return p.l.cli.ContainerKill(ctx, p.id, strconv.Itoa(int(sig)))
}

// Stopped reports whether the first process is stopped (SIGSTOP).
func (p *Process) Stopped() bool {
	if p.pid <= 0 || p.Exited() {
		return false
	}
	for _, q := range launch.Tree(p.pid) {
		if q.Pid == p.pid {
			return q.State == 'T' || q.State == 't'
		}
	}
	return false
}

// Terminate stops the container as the master does: ContainerStop with
// the grace period (the image's stop signal, SIGTERM by default, to its
// first process; SIGKILL at the grace), whole seconds as the API takes
// them. It reports whether it ended within the grace.
func (p *Process) Terminate(grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	secs := int(math.Ceil(grace.Seconds()))
	t0 := time.Now()
	p.killSent.Store(true) // the engine's SIGKILL at the grace
	ctx, cancel := context.WithTimeout(context.Background(), grace+60*time.Second)
	defer cancel()
	_ = p.l.cli.ContainerStop(ctx, p.id, container.StopOptions{Timeout: &secs})
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		return false
	}
	x, _ := p.ExitStatus()
	return x.At.Sub(t0) < grace && x.Signal != syscall.SIGKILL
}

// Kill ends the container at once (SIGKILL through the engine) and waits,
// at most 15 s, for the engine to report its end.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
	}
}

// Wait waits for the container's end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Survivors is always empty: when a container's first process ends, the
// kernel ends every other process of its PID namespace.
func (p *Process) Survivors() []launch.Proc { return nil }

// Cleanup kills the container if it still runs and removes it; it never
// has survivors to report.
func (p *Process) Cleanup() []launch.Proc {
	p.Kill()
	p.remove()
	return nil
}

// remove removes the container (forced), once: a second caller waits
// for the first.
func (p *Process) remove() { p.removeOnce.Do(p.doRemove) }

func (p *Process) doRemove() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.l.cli.ContainerRemove(ctx, p.id, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
		p.l.log.Warn("could not remove container", "name", p.name, "err", err)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		if p.waitCancel != nil {
			p.waitCancel()
		}
	}
	if p.attach != nil {
		p.attach()
	}
	<-p.sampled
	p.l.mu.Lock()
	delete(p.l.procs, p.id)
	p.l.mu.Unlock()
}

// copyOutput demultiplexes the attach stream into the output.
func (p *Process) copyOutput(r io.Reader) {
	defer close(p.outDone)
	_, _ = stdcopy.StdCopy(p.out.Stdout(), p.out.Stderr(), r)
	p.out.Close()
}

// waitExit records the exit the engine reports, then closes done.
func (p *Process) waitExit(waitC <-chan container.WaitResponse, errC <-chan error) {
	defer close(p.done)
	code := int64(-1)
	select {
	case w := <-waitC:
		code = w.StatusCode
	case <-errC:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	x := launch.Exit{Code: int(code), At: time.Now()}
	oom := false
	if ins, err := p.l.cli.ContainerInspect(ctx, p.id); err == nil && ins.State != nil {
		x.Code = ins.State.ExitCode
		x.At = parseTime(ins.State.FinishedAt, x.At)
		oom = ins.State.OOMKilled
	}
	if x.Code > 128 && x.Code < 128+65 {
		x.Signal, x.Code = syscall.Signal(x.Code-128), -1
	}
	// The engine may learn of an OOM kill after the exit (containerd's
	// OOM event comes apart from the exit): a SIGKILL nobody here sent is
	// looked at again, for up to 3 s. Up to 1 s was once not enough on a
	// quiet machine: the main instance of TestContainerMemoryHog was
	// reported as "exited by itself (killed by SIGKILL)".
	for i := 0; i < 15 && x.Signal == syscall.SIGKILL && !oom && !p.killSent.Load(); i++ {
		time.Sleep(200 * time.Millisecond)
		if ins, err := p.l.cli.ContainerInspect(ctx, p.id); err == nil && ins.State != nil {
			oom = ins.State.OOMKilled
		}
	}
	// What it wrote last, before its end is told.
	select {
	case <-p.outDone:
	case <-time.After(time.Second):
	}
	p.mu.Lock()
	p.exit, p.exitKnown, p.oomKilled = x, true, oom
	p.stats.Final = true
	if oom && p.stats.OOMKills == 0 {
		p.stats.OOMKills = 1
	}
	p.mu.Unlock()
}

// sampler samples the container until it ends.
func (p *Process) sampler() {
	defer close(p.sampled)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		p.Sample()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

// Sample measures the container's process tree and reads its cgroup now.
func (p *Process) Sample() {
	if p.pid <= 0 {
		return
	}
	tree := launch.Tree(p.pid)
	if len(tree) == 0 || tree[0].Start != p.pidStart {
		return
	}
	var rss int64
	threads := 0
	for _, q := range tree {
		rss += q.RSS
		threads += max(q.Threads, 1)
	}
	st, ok := p.cg.read(p.limits)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitKnown {
		return
	}
	u := &p.usage
	if u.Samples == 0 {
		u.First = now
	}
	u.Samples++
	u.Last = now
	if rss > u.PeakRSS {
		u.PeakRSS, u.AtPeak = rss, launch.RSS{Anon: rss}
	}
	// /proc's RSS here is not split by kind: the whole counts as what a
	// limit cannot take back (an upper bound; the cgroup's own peak is
	// what the verdict reads).
	u.PeakUnreclaimable = max(u.PeakUnreclaimable, rss)
	p.zombies.Peak(u, threads, tree, now)
	if ok {
		if st.tasksNow > p.tasksMax {
			p.tasksMax = st.tasksNow
		}
		if st.TasksPeak < 0 {
			st.TasksPeak = p.tasksMax
		}
		p.stats, p.statsOK = st.CgroupStats, true
	}
}

// Usage is the peak the samples saw.
func (p *Process) Usage() launch.Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.usage
}

// LimitStats are the container cgroup's counters, as last read while it
// ran (the engine removes the cgroup with the container's end), with the
// engine's OOMKilled counted as an OOM kill.
func (p *Process) LimitStats() (launch.CgroupStats, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.statsOK && !p.oomKilled {
		return launch.CgroupStats{}, false
	}
	st := p.stats
	if p.oomKilled && st.OOMKills == 0 {
		st.OOMKills = 1
	}
	if !p.statsOK {
		st.Limits, st.MemoryPeak, st.TasksPeak = p.limits, -1, -1
	}
	return st, true
}

// Lines is what the container wrote between from and to.
func (p *Process) Lines(from, to time.Time) []launch.Line { return p.out.Lines(from, to) }

// Stdout is the end of what it wrote on stdout.
func (p *Process) Stdout() string { s, _ := p.out.Tails(); return s }

// Stderr is the end of what it wrote on stderr.
func (p *Process) Stderr() string { _, s := p.out.Tails(); return s }

// OutputBytes is how much it wrote on each stream.
func (p *Process) OutputBytes() (stdout, stderr int64) { return p.out.Written() }

// Flush waits, at most timeout, for the output of an ended container to
// be read to its end; of a running one, it gives the attach stream a
// moment.
func (p *Process) Flush(timeout time.Duration) {
	if p.Exited() {
		select {
		case <-p.outDone:
		case <-time.After(timeout):
		}
		return
	}
	time.Sleep(min(timeout, 50*time.Millisecond))
}

// GroupSignals is always empty: a container's processes are in a PID
// namespace of their own, with no master in their process group.
func (p *Process) GroupSignals() []launch.GroupSignal { return nil }

// cgroups are the container's cgroup directories on this host.
type cgroups struct {
	v2     string // the unified directory, on cgroup v2
	memory string // v1 memory controller directory
	pids   string // v1 pids controller directory
}

// findCgroups reads where the process's cgroups are (/proc/PID/cgroup).
func findCgroups(pid int) cgroups {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return cgroups{}
	}
	var c cgroups
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				c.v2 = filepath.Join("/sys/fs/cgroup", parts[2])
			}
		default:
			for _, ctrl := range strings.Split(parts[1], ",") {
				switch ctrl {
				case "memory":
					c.memory = filepath.Join("/sys/fs/cgroup/memory", parts[2])
				case "pids":
					c.pids = filepath.Join("/sys/fs/cgroup/pids", parts[2])
				}
			}
		}
	}
	return c
}

type cgroupReading struct {
	launch.CgroupStats
	tasksNow int64
}

// read reads the counters; false when the cgroup is not there (gone).
func (c cgroups) read(lim launch.Limits) (cgroupReading, bool) {
	st := cgroupReading{CgroupStats: launch.CgroupStats{Limits: lim, MemoryPeak: -1, TasksPeak: -1}}
	switch {
	case c.v2 != "":
		if _, err := os.Stat(c.v2); err != nil {
			return st, false
		}
		st.CgroupStats = launch.ReadCgroupStats(lim, c.v2, "", "")
		st.tasksNow = launch.ReadCgroupValue(c.v2, "pids.current", 0)
		return st, true
	case c.memory != "" || c.pids != "":
		if _, err := os.Stat(c.memory); err != nil {
			return st, false
		}
		st.CgroupStats = launch.ReadCgroupStats(lim, "", c.memory, c.pids)
		if c.pids != "" {
			st.tasksNow = launch.ReadCgroupValue(c.pids, "pids.current", 0)
		}
		return st, true
	}
	return st, false
}
