package launch

import (
	"context"
	"errors"
	"fmt"
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

	startTicks uint64        // the program's start time, in clock ticks
	endTicks   atomic.Uint64 // when Cleanup first finished (0 before)
	cg         *cgroup
	lim        *limitCgroups // the cgroups enforcing Spec.Limits, or nil
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
	reg.Lock()
	delete(reg.direct, p.Pid)
	reg.Unlock()
	// What the program wrote before it exited is in the pipes now: have
	// the readers take it before Done, without waiting for the pipes to
	// close (a descendant may hold them).
	for i := range s.flush {
		ack := make(chan struct{})
		s.flush[i] <- ack
		s.filesMu.Lock()
		if f := s.files[i]; f != nil {
			_ = f.SetReadDeadline(time.Now())
		}
		s.filesMu.Unlock()
		select {
		case <-ack:
		case <-s.readerDone[i]:
		case <-time.After(time.Second):
		}
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
		ack := make(chan struct{})
		select {
		case s.flush[i] <- ack:
		case <-s.readerDone[i]:
			continue
		case <-deadline:
			return
		}
		s.filesMu.Lock()
		if f := s.files[i]; f != nil {
			_ = f.SetReadDeadline(time.Now())
		}
		s.filesMu.Unlock()
		select {
		case <-ack:
		case <-s.readerDone[i]:
		case <-deadline:
			return
		}
	}
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
	case s.cg != nil && s.note != "":
		t = "tracking " + s.cg.String() + " (" + s.note + ")"
	case s.cg != nil:
		t = "tracking " + s.cg.String()
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
	deadline := time.Now().Add(cleanupBound)
	_ = p.Signal(syscall.SIGKILL)
	done := map[int]uint64{}
	clean := false
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
			cg.kill()
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
			clean = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
	}
	s.stopOnce.Do(func() { close(s.stopS) })
	<-s.samplerDone
	if s.standIn != nil {
		s.standIn.close()
	}
	// The holders of the pipes are dead (or beyond reach): let the readers
	// take what is left, then close the pipes so that they end.
	readersDone := make(chan struct{})
	go func() { s.readers.Wait(); close(readersDone) }()
	select {
	case <-readersDone:
	case <-time.After(pipeLinger):
		p.closeFiles()
		<-readersDone
	}
	p.closeFiles()
	if clean && !s.released {
		s.released = true
		s.endTicks.Store(ticksNow())
		if s.cg != nil {
			if err := s.cg.remove(time.Now().Add(time.Second)); err != nil {
				p.mu.Lock()
				s.note = err.Error()
				p.mu.Unlock()
			}
		}
		if s.lim != nil {
			s.lim.finish()
			if err := s.lim.remove(time.Now().Add(time.Second)); err != nil {
				p.mu.Lock()
				s.note = err.Error()
				p.mu.Unlock()
			}
		}
		reg.Lock()
		delete(reg.live, p)
		reg.Unlock()
		guardForget(p)
	}
	return killed
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
			p.sample(selfChildrenShared)
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

var selfKids struct {
	mu   sync.Mutex
	at   time.Time
	pids []int
}

// selfChildrenShared returns this process's children as read at most
// selfChildrenFresh ago. The slice is shared: read it, never change it.
func selfChildrenShared() []int {
	selfKids.mu.Lock()
	defer selfKids.mu.Unlock()
	if now := time.Now(); selfKids.at.IsZero() || now.Sub(selfKids.at) >= selfChildrenFresh {
		selfKids.pids, selfKids.at = children(selfPid), now
	}
	return selfKids.pids
}

// Sample takes a sample now: the memory and threads of the program and its
// descendants, and the members of the launch, remembered so that they can
// be found and ended later wherever they go. The sampler calls it every
// Spec.SampleEvery until Cleanup.
func (p *Process) Sample() { p.sample(func() []int { return children(selfPid) }) }

// sample is Sample, reading this process's children (the subreaper's,
// where orphans of the launch come back) with selfChildren.
func (p *Process) sample(selfChildren func() []int) {
	s := &p.sys
	seen := map[int]bool{}
	var members []Proc
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
			if err != nil || !anyStart && (st.Start < s.startTicks || pid == selfPid || registered(pid)) {
				continue
			}
			members = append(members, st)
			kids := children(pid)
			// Children of a process that is still the same one.
			if again, err := readStat(pid); err != nil || again.Start != st.Start {
				continue
			}
			queue = append(queue, kids...)
		}
	}
	s.reapMu.RLock()
	running := !s.reaped
	if running {
		walk(p.Pid, true)
	}
	s.reapMu.RUnlock()
	for _, cg := range s.cgroups() {
		for _, pid := range cg.members() {
			walk(pid, false)
		}
	}
	p.mu.Lock()
	known := make(map[int]uint64, len(s.known))
	for pid, start := range s.known {
		known[pid] = start
	}
	p.mu.Unlock()
	var gone []int
	for pid, start := range known {
		if st, err := readStat(pid); err == nil && st.Start == start {
			walk(pid, false)
		} else {
			gone = append(gone, pid)
		}
	}
	for _, c := range selfChildren() {
		if seen[c] || registered(c) {
			continue
		}
		if st, err := readStat(c); err == nil && p.claims(st, known, running) {
			walk(c, false)
		}
	}

	var rss int64
	var thr int
	var split RSS
	hwms := make([]int64, len(members))
	for i, m := range members {
		if m.State != 'Z' {
			r, h := readRSS(m.Pid)
			split.Anon += r.Anon
			split.File += r.File
			split.Shmem += r.Shmem
			hwms[i] = h
		}
	}
	now := time.Now()
	var fresh []Proc
	p.mu.Lock()
	for _, pid := range gone {
		if s.known[pid] == known[pid] {
			delete(s.known, pid)
		}
	}
	if s.hwm == nil {
		s.hwm = map[[2]uint64]int64{}
	}
	zombies := 0
	for i, m := range members {
		rss += m.RSS
		thr += m.Threads
		if m.State == 'Z' {
			zombies++
		}
		if k := [2]uint64{uint64(m.Pid), m.Start}; hwms[i] > s.hwm[k] && (len(s.hwm) < maxHWM || s.hwm[k] > 0) {
			s.hwm[k] = hwms[i]
		}
		if m.Pid == p.Pid && m.Start == s.startTicks {
			continue
		}
		if s.known[m.Pid] != m.Start {
			s.known[m.Pid] = m.Start
			fresh = append(fresh, m)
		}
	}
	if running && len(members) > 0 {
		u := &p.usage
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
		// Each process's own high-water mark misses no peak between
		// samples; summed over the tree it may exceed the tree's peak
		// when its processes peaked at different times.
		u.PeakRSS = max(u.PeakRSS, s.sampledPeak, sum)
		u.PeakUnreclaimable = max(u.PeakUnreclaimable, split.Unreclaimable())
		if thr > u.PeakThreads {
			u.PeakThreads, u.ZombiesAtPeak = thr, zombies
		}
	}
	p.mu.Unlock()
	p.tellGuard(fresh)
	for _, m := range members {
		if m.State == 'Z' && m.PPid == selfPid && !registered(m.Pid) {
			reapProc(m.Pid, m.Start)
		}
	}
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
	v2 := false
	for _, cg := range s.cgroups() {
		if cg.contains(q.Pid) {
			return true
		}
		v2 = v2 || cg.v2
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
// tracking cgroup; the program's descendants while it is unreaped; members
// seen before and still the same process; those marked with its cookie;
// its process group while that is known to be its own; orphans claimed;
// and the descendants of all these. The program itself is not a member.
func (p *Process) discover() (alive, zombies []Proc) {
	s := &p.sys
	snap := All()
	byPid := make(map[int]int, len(snap))
	kids := map[int][]int{}
	for i, q := range snap {
		byPid[q.Pid] = i
		kids[q.PPid] = append(kids[q.PPid], i)
	}
	in := map[int]bool{}
	var queue []int
	add := func(i int) {
		q := snap[i]
		if in[q.Pid] || q.Start < s.startTicks || q.Pid == selfPid || q.Pid == p.Pid && q.Start == s.startTicks || registered(q.Pid) {
			return
		}
		in[q.Pid] = true
		queue = append(queue, i)
	}
	closure := func() {
		for k := 0; k < len(queue); k++ {
			for _, c := range kids[snap[queue[k]].Pid] {
				add(c)
			}
		}
	}
	for _, cg := range s.cgroups() {
		for _, pid := range cg.members() {
			if i, ok := byPid[pid]; ok {
				add(i)
			}
		}
	}
	// Unreaped now, so unreaped when the snapshot was taken: its PID there
	// is the program's.
	s.reapMu.RLock()
	running := !s.reaped
	s.reapMu.RUnlock()
	if running {
		if _, ok := byPid[p.Pid]; ok {
			for _, c := range kids[p.Pid] {
				add(c)
			}
		}
	}
	// (add takes reg's lock: not under p.mu, which the guard's replay
	// takes under reg's.)
	p.mu.Lock()
	known := make(map[int]uint64, len(s.known))
	for pid, start := range s.known {
		if i, ok := byPid[pid]; ok && snap[i].Start == start {
			known[pid] = start
		} else {
			delete(s.known, pid) // gone
		}
	}
	p.mu.Unlock()
	for pid := range known {
		add(byPid[pid])
	}
	for i, q := range snap {
		if !in[q.Pid] && q.State != 'Z' && q.Start >= s.startTicks && hasToken(q.Pid, p.cookie) {
			add(i)
		}
	}
	closure()
	// The program's process group is its own while the program is
	// unreaped, or while a member is in it: members of it are members.
	groupOurs := running
	for _, i := range queue {
		groupOurs = groupOurs || snap[i].pgid == s.pgid
	}
	for i, q := range snap {
		if groupOurs && q.pgid == s.pgid {
			add(i)
		}
		if q.PPid == selfPid && !in[q.Pid] && !registered(q.Pid) && p.claims(q, known, running) {
			add(i)
		}
	}
	closure()

	var fresh []Proc
	p.mu.Lock()
	for _, i := range queue {
		q := snap[i]
		if s.known[q.Pid] != q.Start {
			s.known[q.Pid] = q.Start
			fresh = append(fresh, q)
		}
	}
	p.mu.Unlock()
	p.tellGuard(fresh)
	for _, i := range queue {
		q := snap[i]
		if q.State == 'Z' || q.State == 'X' {
			zombies = append(zombies, q)
			continue
		}
		q.Cmdline = cmdline(q.Pid)
		alive = append(alive, q)
	}
	return alive, zombies
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
	guardSend(string(b))
}

// maxHWM bounds how many processes' high-water marks a launch keeps.
const maxHWM = 4096

// cgroups are the cgroups that hold the launch: its tracking cgroup and its
// limit cgroups.
func (s *procSys) cgroups() []*cgroup {
	var out []*cgroup
	if s.cg != nil {
		out = append(out, s.cg)
	}
	if s.lim != nil {
		out = append(out, s.lim.cgs...)
	}
	return out
}

// populated reports whether a process is still in one of the launch's
// cgroups.
func (s *procSys) populated() bool {
	for _, cg := range s.cgroups() {
		if cg.populated() {
			return true
		}
	}
	return false
}
