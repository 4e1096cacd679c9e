package launch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the launcher's own waits. Generous for a loaded CI machine;
// each is reached only when processes do not die of SIGKILL at once (an
// uninterruptible sleep, a machine thrashing).
const (
	killWait     = 5 * time.Second        // for the program to die of SIGKILL
	cleanupBound = 3 * time.Second        // Cleanup's search-and-kill rounds
	pipeLinger   = 300 * time.Millisecond // for the pipes to close once the holders are dead
)

// procSys is the Linux part of a Process.
type procSys struct {
	proc *os.Process
	// reapMu makes "the program is not reaped" hold while the process
	// group is signalled: the waiter takes it to reap.
	reapMu sync.RWMutex
	reaped bool

	// pgid is the program's process group as started: its own PID, or
	// the stand-in's (Spec.MasterGroup).
	pgid    int
	standIn *standIn

	h *host // the launcher's shared state, from Init

	startTicks uint64        // the program's start time, in clock ticks
	endTicks   atomic.Uint64 // when Cleanup first finished (0 before)
	track      cgroupManager // the tracking cgroup, or nil
	lim        cgroupManager // the cgroups enforcing Spec.Limits, or nil
	note       string        // why there is no tracking cgroup (guarded by Process.mu)
	guardNote  string        // why there is no guard
	every      time.Duration

	files      [2]*os.File // read ends of stdout and stderr
	filesMu    sync.Mutex
	readers    sync.WaitGroup
	readerDone [2]chan struct{}
	flush      [2]chan chan struct{} // the waiter's requests to take what is in a pipe

	stopS       chan struct{}
	samplerDone chan struct{}
	stopOnce    sync.Once

	cleanMu  sync.Mutex
	released bool
	known    map[int]uint64 // pid -> start of every member seen (guarded by Process.mu)
	// hwm is the highest VmHWM read of every member seen, the program
	// included, and sampledPeak the highest sampled total RSS (guarded by
	// Process.mu).
	hwm         map[[2]uint64]int64
	sampledPeak int64
	// zombies follows the members' zombies (guarded by Process.mu).
	zombies ZombieWatch
}

// wait reaps the program. It first waits without reaping (WNOWAIT) to
// note when the program exited, then reaps it under reapMu, so that no
// one signals its group after its PID may have been freed.
func (p *Process) wait() {
	s := &p.sys
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	e := Exit{At: time.Now(), Code: -1}
	s.reapMu.Lock()
	st, err := s.proc.Wait()
	if err == nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Exited():
				e.Code = ws.ExitStatus()
			case ws.Signaled():
				e.Signal, e.Core = ws.Signal(), ws.CoreDump()
			}
		}
	}
	p.exit = e
	s.reaped = true
	s.reapMu.Unlock()
	s.h.reg.forget(p.Pid)
	// What the program wrote before it exited is in the pipes now: have
	// the readers take it before Done, without waiting for the pipes to
	// close (a descendant may hold them).
	for i := range s.flush {
		p.flushStream(i, nil, func() <-chan time.Time { return time.After(time.Second) })
	}
	close(p.done)
}

// Flush has the output readers take what the pipes hold now, waiting at
// most timeout: a line the program wrote before a moment is then in Lines
// once Flush returns after it (a check's output is read when its call has
// been answered, not when the reader happens to catch up).
func (p *Process) Flush(timeout time.Duration) {
	s := &p.sys
	deadline := time.After(timeout)
	for i := range s.flush {
		if !p.flushStream(i, deadline, func() <-chan time.Time { return deadline }) {
			return
		}
	}
}

// flushStream has the reader of stream i take what the pipe holds now:
// a flush request, sent by deadline (nil: whenever the reader takes it),
// then a read deadline that wakes the reader, and its answer awaited
// until ackBy() (called once the request is sent). False when a deadline
// came first.
func (p *Process) flushStream(i int, deadline <-chan time.Time, ackBy func() <-chan time.Time) bool {
	s := &p.sys
	ack := make(chan struct{})
	select {
	case s.flush[i] <- ack:
	case <-s.readerDone[i]:
		return true
	case <-deadline:
		return false
	}
	s.filesMu.Lock()
	if f := s.files[i]; f != nil {
		_ = f.SetReadDeadline(time.Now())
	}
	s.filesMu.Unlock()
	select {
	case <-ack:
	case <-s.readerDone[i]:
	case <-ackBy():
		return false
	}
	return true
}

// drain reads one output stream until it closes (or Cleanup closes it).
// When the program has exited, the waiter asks it (through flush and a
// read deadline) to take what is in the pipe at once.
func (p *Process) drain(i int) {
	s := &p.sys
	defer s.readers.Done()
	defer close(s.readerDone[i])
	f := s.files[i]
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			p.out[i].write(buf[:n], time.Now())
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = f.SetReadDeadline(time.Time{})
			select {
			case ack := <-s.flush[i]:
				p.takeAvailable(i, f, buf)
				close(ack)
			default:
			}
			continue
		}
		if err != nil {
			break
		}
	}
	p.out[i].eof()
}

// takeAvailable reads what the pipe holds now (FIONREAD, alias TIOCINQ), without
// waiting for more.
func (p *Process) takeAvailable(i int, f *os.File, buf []byte) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	avail := 0
	_ = rc.Control(func(fd uintptr) { avail, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }) // TIOCINQ is FIONREAD
	for avail > 0 {
		n := 0
		_ = rc.Control(func(fd uintptr) { n, _ = unix.Read(int(fd), buf[:min(len(buf), avail)]) })
		if n <= 0 {
			return
		}
		p.out[i].write(buf[:n], time.Now())
		avail -= n
	}
}

func (p *Process) closeFiles() {
	p.sys.filesMu.Lock()
	defer p.sys.filesMu.Unlock()
	for i, f := range p.sys.files {
		if f != nil {
			f.Close()
			p.sys.files[i] = nil
		}
	}
}

// Signal sends sig to the program's PID only, through its pidfd. Once the
// program has exited it returns os.ErrProcessDone and signals nothing.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	err := p.sys.proc.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return os.ErrProcessDone
	}
	return err
}

// Stopped reports whether the program is stopped right now (SIGSTOP,
// SIGTSTP, ...: state T or t in /proc).
func (p *Process) Stopped() bool {
	p.sys.reapMu.RLock()
	defer p.sys.reapMu.RUnlock()
	if p.sys.reaped {
		return false
	}
	st, err := readStat(p.Pid)
	return err == nil && (st.State == 'T' || st.State == 't')
}

// Terminate stops the program as the master does: SIGTERM to its PID, up
// to grace for it to exit, then SIGKILL to its PID and a bounded wait. It
// touches no other process. It reports whether the program ended within
// grace other than by SIGKILL (from anyone): true also when it had ended
// before.
func (p *Process) Terminate(grace time.Duration) (graceful bool) {
	p.Sample() // the last look at a program that is running
	if err := p.Signal(syscall.SIGTERM); errors.Is(err, os.ErrProcessDone) {
		select {
		case <-p.done: // reaped already; Done follows at once
		case <-time.After(killWait):
			return false
		}
		return p.exit.Signal != syscall.SIGKILL
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exit.Signal != syscall.SIGKILL
	case <-t.C:
	}
	_ = p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killWait):
	}
	return false
}

// Stop is Terminate(grace) then Cleanup; it reports what Terminate did.
func (p *Process) Stop(grace time.Duration) (graceful bool) {
	graceful = p.Terminate(grace)
	p.Cleanup()
	return graceful
}

// Kill sends SIGKILL to the program's PID now, then Cleanup.
func (p *Process) Kill() {
	if !p.Exited() {
		p.Sample() // the last look at a program that is running
	}
	_ = p.Signal(syscall.SIGKILL)
	p.Cleanup()
}

// Wait waits for the program to exit, at most until ctx is done.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Tracking says how the launch's processes are tracked: its tracking
// cgroup, or why there is none, and its guard.
func (p *Process) Tracking() string {
	s := &p.sys
	p.mu.Lock()
	defer p.mu.Unlock()
	var t string
	switch {
	case s.track != nil && s.note != "":
		t = "tracking " + s.track.String() + " (" + s.note + ")"
	case s.track != nil:
		t = "tracking " + s.track.String()
	default:
		t = s.note
	}
	if s.guardNote != "" {
		return t + "; " + s.guardNote
	}
	return t + "; guarded"
}

// Survivors returns every process of this launch that is alive (not a
// zombie), other than the program itself, with its Cmdline: see the
// package comment for how they are found.
func (p *Process) Survivors() []Proc {
	alive, _ := p.discover()
	return alive
}

// Cleanup ends the program (SIGKILL to its PID if it still runs) and every
// process Survivors would list, its process group while that is safe, and
// reaps those that are this process's children. It returns the processes
// it killed other than the program. It is bounded (cleanupBound, then
// pipeLinger), whatever the processes do, safe to call concurrently and
// more than once, and never signals a PID or group that may have been
// recycled.
func (p *Process) Cleanup() (killed []Proc) {
	s := &p.sys
	s.cleanMu.Lock()
	defer s.cleanMu.Unlock()
	_ = p.Signal(syscall.SIGKILL)
	killed, clean := p.killRounds(time.Now().Add(cleanupBound))
	p.stopWatching()
	if clean && !s.released {
		p.release()
	}
	return killed
}

// killRounds finds the launch's members and kills them, in rounds, until
// none is left and the program is reaped (clean) or deadline passes.
func (p *Process) killRounds(deadline time.Time) (killed []Proc, clean bool) {
	s := &p.sys
	done := map[int]uint64{}
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		// Find first, then kill: what is found alive now is what Cleanup
		// ends, whether the group, the cgroup or its own signal does it.
		alive, zombies := p.discover()
		// The group is the program's own: with a stand-in it is the
		// stand-in's, whose members discover finds and kills one by one,
		// so that the launcher's SIGKILL is not taken for the program's.
		s.reapMu.RLock()
		if !s.reaped && s.standIn == nil {
			killGroup(p.Pid)
		}
		s.reapMu.RUnlock()
		for _, cg := range s.cgroups() {
			cg.Kill()
		}
		for _, q := range alive {
			killProc(q.Pid, q.Start)
			if done[q.Pid] != q.Start {
				done[q.Pid] = q.Start
				killed = append(killed, q)
			}
		}
		pending := 0
		for _, z := range zombies {
			if z.PPid == selfPid && !reapProc(z.Pid, z.Start) {
				pending++
			}
		}
		if len(alive) == 0 && pending == 0 && p.Exited() && !s.populated() {
			return killed, true
		}
		if time.Now().After(deadline) {
			return killed, false
		}
		time.Sleep(delay)
	}
}

// stopWatching stops the sampler and the stand-in, lets the output readers
// take what is left in the pipes (their holders are dead, or beyond reach)
// for at most pipeLinger, then closes the pipes so that the readers end.
func (p *Process) stopWatching() {
	s := &p.sys
	s.stopOnce.Do(func() { close(s.stopS) })
	<-s.samplerDone
	if s.standIn != nil {
		s.standIn.close()
	}
	readersDone := make(chan struct{})
	go func() { s.readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(pipeLinger):
		p.closeFiles()
		<-readersDone
	}
	p.closeFiles()
}

// release ends the launch once nothing of it is left: its cgroups removed
// (the limit counters read one last time), the launcher and the guard
// told.
func (p *Process) release() {
	s := &p.sys
	s.released = true
	s.endTicks.Store(ticksNow())
	for _, cg := range s.cgroups() {
		if err := cg.Destroy(time.Now().Add(time.Second)); err != nil {
			p.mu.Lock()
			s.note = err.Error()
			p.mu.Unlock()
		}
	}
	s.h.reg.Lock()
	delete(s.h.reg.live, p)
	s.h.reg.Unlock()
	s.h.guardForget(p)
}

// GroupSignals returns the signals that reached the master's stand-in
// (Spec.MasterGroup) so far, in order: those the program or its
// descendants sent to their process group. After Cleanup the list is
// complete. Nil without a stand-in.
func (p *Process) GroupSignals() []GroupSignal {
	if p.sys.standIn == nil {
		return nil
	}
	return p.sys.standIn.signals()
}

// killGroup sends SIGKILL to process group g; never to this process's own
// group nor to a group ID that cannot be one.
func killGroup(g int) {
	if g <= 1 || g == selfPgid || g == selfPid {
		return
	}
	_ = unix.Kill(-g, unix.SIGKILL)
}

func (p *Process) sampleLoop() {
	defer close(p.sys.samplerDone)
	t := time.NewTicker(p.sys.every)
	defer t.Stop()
	for {
		select {
		case <-p.sys.stopS:
			return
		case <-t.C:
			p.sample(p.sys.h.kids.shared)
		}
	}
}

// selfChildrenFresh is how old a list of this process's children that a
// sampler's tick reads may be. Every launch's sampler reads the list, and
// it takes a file per thread of this process (/proc/self/task/*/children):
// with ten launches at 20 ms, most of the sampling's cost. Shared for
// 10 ms, a re-parented orphan is seen by a sampler's tick at most 10 ms
// later; Sample called directly, Survivors and Cleanup read it afresh.
const selfChildrenFresh = 10 * time.Millisecond

// selfKids is this process's children as a sampler's tick last read them
// (host.selfKids), shared by every launch's sampler.
type selfKids struct {
	mu   sync.Mutex
	at   time.Time
	pids []int
}

// shared returns this process's children as read at most
// selfChildrenFresh ago. The slice is shared: read it, never change it.
func (k *selfKids) shared() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); k.at.IsZero() || now.Sub(k.at) >= selfChildrenFresh {
		k.pids, k.at = children(selfPid), now
	}
	return k.pids
}

// Sample takes a sample now: the memory and threads of the program and its
// descendants, and the members of the launch, remembered so that they can
// be found and ended later wherever they go. The sampler calls it every
// Spec.SampleEvery until Cleanup.
func (p *Process) Sample() { p.sample(func() []int { return children(selfPid) }) }

// sample is Sample, reading this process's children (the subreaper's,
// where orphans of the launch come back) with selfChildren.
func (p *Process) sample(selfChildren func() []int) {
	t := p.sampleTree(selfChildren)
	t.readMemory()
	fresh := p.record(t, time.Now())
	p.tellGuard(fresh)
	for _, m := range t.members {
		if m.State == 'Z' && m.PPid == selfPid && !p.sys.h.reg.has(m.Pid) {
			reapProc(m.Pid, m.Start)
		}
	}
}

// sample is what one Sample found.
type sample struct {
	members []Proc         // the program (while it runs) and the members found
	running bool           // the program was unreaped
	known   map[int]uint64 // the members known before, as they were read
	gone    []int          // those of known that are gone
	hwms    []int64        // each member's VmHWM (0 for a zombie)
	split   RSS            // the members' RSS, split
}

// sampleTree finds the members: the program's tree while it is unreaped,
// the trees of the processes in the launch's cgroups, of the members
// known before and still the same process, and of the orphans it claims.
func (p *Process) sampleTree(selfChildren func() []int) *sample {
	s := &p.sys
	t := &sample{}
	seen := map[int]bool{}
	walk := func(root int, anyStart bool) {
		queue := []int{root}
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			st, err := readStat(pid)
			if err != nil || !anyStart && (st.Start < s.startTicks || pid == selfPid || s.h.reg.has(pid)) {
				continue
			}
			t.members = append(t.members, st)
			kids := children(pid)
			// Children of a process that is still the same one.
			if again, err := readStat(pid); err != nil || again.Start != st.Start {
				continue
			}
			queue = append(queue, kids...)
		}
	}
	s.reapMu.RLock()
	t.running = !s.reaped
	if t.running {
		walk(p.Pid, true)
	}
	s.reapMu.RUnlock()
	for _, cg := range s.cgroups() {
		for _, pid := range cg.Pids() {
			walk(pid, false)
		}
	}
	p.mu.Lock()
	t.known = maps.Clone(s.known)
	p.mu.Unlock()
	for pid, start := range t.known {
		if st, err := readStat(pid); err == nil && st.Start == start {
			walk(pid, false)
		} else {
			t.gone = append(t.gone, pid)
		}
	}
	for _, c := range selfChildren() {
		if seen[c] || s.h.reg.has(c) {
			continue
		}
		if st, err := readStat(c); err == nil && p.claims(st, t.known, t.running) {
			walk(c, false)
		}
	}
	return t
}

// readMemory reads the members' RSS split and high-water marks.
func (t *sample) readMemory() {
	t.hwms = make([]int64, len(t.members))
	for i, m := range t.members {
		if m.State != 'Z' {
			r, h := readRSS(m.Pid)
			t.split.Anon += r.Anon
			t.split.File += r.File
			t.split.Shmem += r.Shmem
			t.hwms[i] = h
		}
	}
}

// record keeps what the sample found: the members known (it returns the
// new ones), their high-water marks, and the usage while the program runs.
func (p *Process) record(t *sample, now time.Time) (fresh []Proc) {
	s := &p.sys
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pid := range t.gone {
		if s.known[pid] == t.known[pid] {
			delete(s.known, pid)
		}
	}
	if s.hwm == nil {
		s.hwm = map[[2]uint64]int64{}
	}
	var rss int64
	var thr int
	for i, m := range t.members {
		rss += m.RSS
		thr += m.Threads
		if k := [2]uint64{uint64(m.Pid), m.Start}; t.hwms[i] > s.hwm[k] && (len(s.hwm) < maxHWM || s.hwm[k] > 0) {
			s.hwm[k] = t.hwms[i]
		}
		if m.Pid == p.Pid && m.Start == s.startTicks {
			continue
		}
		if s.known[m.Pid] != m.Start {
			s.known[m.Pid] = m.Start
			fresh = append(fresh, m)
		}
	}
	if t.running && len(t.members) > 0 {
		p.addUsage(now, rss, thr, t.members, t.split)
	}
	return fresh
}

// addUsage counts a sample of the running program's tree (under p.mu):
// rss and thr in all, of members, the RSS split.
func (p *Process) addUsage(now time.Time, rss int64, thr int, members []Proc, split RSS) {
	s, u := &p.sys, &p.usage
	u.Samples++
	if u.First.IsZero() {
		u.First = now
	}
	u.Last = now
	if rss > s.sampledPeak || u.Samples == 1 {
		s.sampledPeak, u.AtPeak = rss, split
	}
	var sum int64
	for _, h := range s.hwm {
		sum += h
	}
	// Each process's own high-water mark misses no peak between samples;
	// summed over the tree it may exceed the tree's peak when its
	// processes peaked at different times.
	u.PeakRSS = max(u.PeakRSS, s.sampledPeak, sum)
	u.PeakUnreclaimable = max(u.PeakUnreclaimable, split.Unreclaimable())
	s.zombies.Peak(u, thr, members, now)
}

// claims reports whether q, a child of this process that the launcher did
// not start (so an orphan re-parented to it, the subreaper), belongs to
// this launch: by its tracking cgroup, as a member seen before, by its
// marker, by its process group; or, where no cgroup tells, by when it
// started (see the package comment).
func (p *Process) claims(q Proc, known map[int]uint64, running bool) bool {
	s := &p.sys
	if q.Start < s.startTicks {
		return false
	}
	v2 := false // a cgroup v2 shows a zombie where it died; v1 does not
	for _, cg := range s.cgroups() {
		if cg.Contains(q.Pid) {
			return true
		}
		v2 = v2 || cg.Version() == 2
	}
	switch {
	case known[q.Pid] == q.Start:
		return true
	case q.State != 'Z' && hasToken(q.Pid, p.cookie):
		return true
	case running && q.pgid == s.pgid:
		return true
	}
	byWindow := len(s.cgroups()) == 0 || !v2 && q.State == 'Z'
	return byWindow && q.sid != selfSid && (s.endTicks.Load() == 0 || q.Start <= s.endTicks.Load()) && (selfPid == 1 || isSubreaper())
}

// discover finds the members of the launch in one scan of /proc: in the
// launch's cgroups; the program's descendants while it is unreaped;
// members seen before and still the same process; those marked with its
// cookie; its process group while that is known to be its own; orphans
// claimed; and the descendants of all these. The program itself is not a
// member.
func (p *Process) discover() (alive, zombies []Proc) {
	s := &p.sys
	ps := newProcSet(All(), func(q Proc) bool {
		return q.Start >= s.startTicks && q.Pid != selfPid && !(q.Pid == p.Pid && q.Start == s.startTicks) && !s.h.reg.has(q.Pid)
	})
	running, known := p.seedMembers(ps)
	ps.closure()
	// The program's process group is its own while the program is
	// unreaped, or while a member is in it: members of it are members.
	groupOurs := running
	for _, i := range ps.queue {
		groupOurs = groupOurs || ps.snap[i].pgid == s.pgid
	}
	for i, q := range ps.snap {
		if groupOurs && q.pgid == s.pgid {
			ps.add(i)
		}
		if q.PPid == selfPid && !ps.in[q.Pid] && !s.h.reg.has(q.Pid) && p.claims(q, known, running) {
			ps.add(i)
		}
	}
	ps.closure()

	var fresh []Proc
	p.mu.Lock()
	for _, i := range ps.queue {
		q := ps.snap[i]
		if s.known[q.Pid] != q.Start {
			s.known[q.Pid] = q.Start
			fresh = append(fresh, q)
		}
	}
	p.mu.Unlock()
	p.tellGuard(fresh)
	for _, i := range ps.queue {
		q := ps.snap[i]
		if q.State == 'Z' || q.State == 'X' {
			zombies = append(zombies, q)
			continue
		}
		q.Cmdline = cmdline(q.Pid)
		alive = append(alive, q)
	}
	return alive, zombies
}

// seedMembers adds to ps the members discover starts from: those in the
// launch's cgroups, the program's children while it is unreaped (running),
// the members known before that are still the same process (known), and
// those marked with the launch's cookie.
func (p *Process) seedMembers(ps *procSet) (running bool, known map[int]uint64) {
	s := &p.sys
	for _, cg := range s.cgroups() {
		for _, pid := range cg.Pids() {
			ps.addPid(pid)
		}
	}
	// Unreaped now, so unreaped when the snapshot was taken: its PID there
	// is the program's.
	s.reapMu.RLock()
	running = !s.reaped
	s.reapMu.RUnlock()
	if _, ok := ps.byPid[p.Pid]; ok && running {
		for _, c := range ps.kids[p.Pid] {
			ps.add(c)
		}
	}
	// (add takes the registry's lock: not under p.mu, which the guard's
	// replay takes under the registry's.)
	p.mu.Lock()
	known = make(map[int]uint64, len(s.known))
	for pid, start := range s.known {
		if i, ok := ps.byPid[pid]; ok && ps.snap[i].Start == start {
			known[pid] = start
		} else {
			delete(s.known, pid) // gone
		}
	}
	p.mu.Unlock()
	for pid := range known {
		ps.addPid(pid)
	}
	for i, q := range ps.snap {
		if !ps.in[q.Pid] && q.State != 'Z' && q.Start >= s.startTicks && hasToken(q.Pid, p.cookie) {
			ps.add(i)
		}
	}
	return running, known
}

// procSet is a set of processes of one snapshot of /proc, in the order
// they were added; closure adds their descendants.
type procSet struct {
	snap   []Proc
	byPid  map[int]int   // PID -> index in snap
	kids   map[int][]int // PID -> indexes of its children
	in     map[int]bool
	queue  []int // indexes, in the order added
	accept func(Proc) bool
}

func newProcSet(snap []Proc, accept func(Proc) bool) *procSet {
	ps := &procSet{snap: snap, byPid: make(map[int]int, len(snap)), kids: map[int][]int{}, in: map[int]bool{}, accept: accept}
	for i, q := range snap {
		ps.byPid[q.Pid] = i
		ps.kids[q.PPid] = append(ps.kids[q.PPid], i)
	}
	return ps
}

// add adds snap[i], if accept takes it.
func (ps *procSet) add(i int) {
	q := ps.snap[i]
	if ps.in[q.Pid] || !ps.accept(q) {
		return
	}
	ps.in[q.Pid] = true
	ps.queue = append(ps.queue, i)
}

// addPid adds the process pid, if the snapshot has it.
func (ps *procSet) addPid(pid int) {
	if i, ok := ps.byPid[pid]; ok {
		ps.add(i)
	}
}

// closure adds the descendants of every process in the set.
func (ps *procSet) closure() {
	for k := 0; k < len(ps.queue); k++ {
		for _, c := range ps.kids[ps.snap[ps.queue[k]].Pid] {
			ps.add(c)
		}
	}
}

// tellGuard tells the guard of members it does not know yet.
func (p *Process) tellGuard(fresh []Proc) {
	if len(fresh) == 0 {
		return
	}
	var b []byte
	for _, q := range fresh {
		if q.State != 'Z' {
			b = fmt.Appendf(b, "P %s %d %d\n", p.cookie, q.Pid, q.Start)
		}
	}
	p.sys.h.guardSend(string(b))
}

// maxHWM bounds how many processes' high-water marks a launch keeps.
const maxHWM = 4096

// cgroups are the cgroups that hold the launch: its tracking cgroup and its
// limit cgroups.
func (s *procSys) cgroups() []cgroupManager {
	var out []cgroupManager
	if s.track != nil {
		out = append(out, s.track)
	}
	if s.lim != nil {
		out = append(out, s.lim)
	}
	return out
}

// populated reports whether a process is still in one of the launch's
// cgroups.
func (s *procSys) populated() bool {
	for _, cg := range s.cgroups() {
		if cg.Populated() {
			return true
		}
	}
	return false
}
