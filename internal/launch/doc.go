// Package launch starts a runtime the way the function manager's master
// does, watches it, stops it the way the master does, and then makes sure
// that nothing it started is left — whatever the runtime does. It is the one
// launcher of oe-rt: conform and bench use it.
//
// Linux only (the parts that need it are in *_linux.go); elsewhere Start
// returns an error.
//
// # Starting
//
// [Start] runs Spec.Path — looked up in PATH when it has no slash, else
// taken relative to this process's working directory (not to Spec.Dir) —
// with argv[0] = Spec.Argv0 (the master puts the instance name there), in
// Spec.Dir, with exactly Spec.Env plus the launch marker [CookieEnv]. The
// program gets stdin /dev/null, a process group of its own, SIGKILL as its
// parent-death signal, and, where the machine allows, a tracking cgroup
// (below). A program that cannot be started gives a [*StartError], which
// matches [ErrStart] and names the cause: no such file, no such name in
// PATH, not executable, a directory, a #! line naming a missing
// interpreter, CRLF line endings in the #! line, "#!/usr/bin/env NAME" with
// no NAME in the program's PATH, a byte-order mark before #!, a missing
// dynamic loader, a file that is no program, a missing working directory.
// Other errors (no file descriptors left, fork failing) are the launcher's
// own and do not match ErrStart.
//
// # Output
//
// Stdout and stderr are read all the time (a program that floods them never
// blocks). Each is kept twice, each bounded by Spec.TailBytes: the raw tail
// ([Process.Stdout], [Process.Stderr]) and time-stamped lines
// ([Process.Lines]): a line is stamped when its first byte was read, is at
// most [MaxLineBytes] (the rest is dropped and the line marked Cut), and
// [Process.Lines] returns the lines of both streams of a time window in the
// order they were read. Output the program wrote just before it exited may
// be read, and stamped, just after Exit.At.
//
// # Life
//
// [Process.Done] is closed as soon as the program has exited and been
// reaped, and what it wrote before it exited has been read — it does not
// wait for the pipes to close, which a descendant may hold open for ever;
// their output is still read until they close or Cleanup ends the holder.
// [Exit.At] is when the program exited. [Exit.String] names the signal:
// "exit status 3", "killed by SIGKILL", "terminated by SIGTERM (default
// action)", "killed by SIGSEGV (core dumped)". [Process.Stopped] says
// whether the program is stopped (SIGSTOP) right now. The sampler
// ([Process.Sample], every Spec.SampleEvery, once at Start, and once more
// when Terminate or Kill is about to signal a running program) records
// the peak memory and threads of the program and its descendants
// ([Process.Usage]: the peak RSS and its split into anonymous, file-backed
// and shared memory from /proc/PID/status, the peak of anonymous plus
// shared memory, the peak thread count, how many samples and when) and
// every member of the launch it sees. A caller that knows when the
// program's memory moves (a call answered) samples then too.
//
// # Stopping
//
// [Process.Signal] and [Process.Terminate] act on the program's PID only,
// as the master does: Terminate sends SIGTERM, waits up to the grace
// period, then sends SIGKILL and waits (bounded). They touch no other
// process. What is left is for [Process.Survivors] to list ("under the
// master, pid N (`sleep 300`) would have kept running") and for
// [Process.Cleanup] to end: it kills the program if it still runs, every
// member of the launch, and the program's process group while that is
// safe; it reaps what is this process's child, removes the tracking cgroup
// and closes the pipes. [Process.Stop] is Terminate then Cleanup;
// [Process.Kill] is SIGKILL then Cleanup. Call one of Cleanup, Stop or
// Kill for every Process: until then its sampler runs and the guard stays.
//
// Every wait is bounded, whatever the processes do — leave the group (even
// for this process's own group, which is never signalled), stop themselves,
// ignore signals, fork: Terminate by the grace period plus 5s for SIGKILL
// to act; Cleanup by 3s of find-and-kill rounds (a few milliseconds when
// SIGKILL works, as it does on stopped processes), then 300ms for the pipes
// to close, 1s to remove the cgroup and 2s for the guard to exit. Cleanup,
// Stop and Kill may be called more than once and at the same time.
//
// # The master's process group
//
// With Spec.MasterGroup the program is not given a process group of its
// own: it joins the group of a stand-in for the master, as Baetyl's master
// starts an instance in its own group. The stand-in is a shell script
// for /bin/sh, or where there is none this executable again (re-executed
// with OE_RT_LAUNCH_STAND_IN set, run by [Init] first thing in main),
// started on the forking thread with SIGKILL
// as its parent-death signal, outside the launch's cgroups; it does
// nothing but wait. [Process.GroupSignals] returns the signals that
// reached it: those the program or its descendants sent to their group
// (kill -TERM 0). SIGHUP, SIGINT, SIGTERM and SIGKILL end it as they are
// delivered, and the launcher reads them from its wait status (it reaps
// the stand-in only in Cleanup, so that the group's ID is never reused
// meanwhile); the other signals it catches and reports on a pipe. It is
// never a member of the launch. The launcher never signals that group:
// Cleanup ends its members one by one (they are members: the group is the
// program's), then closes the stand-in's standard input, takes what it
// reported, and reaps it (killing it through its pidfd if it does not exit
// within 2s; that SIGKILL is not reported).
//
// # The members of a launch
//
// Survivors and Cleanup find the members of a launch — every process it
// started, directly or not, other than the program — in one scan of /proc,
// as the union of:
//
//   - the tracking cgroup and the limit cgroups, when there are: nothing
//     leaves them by setsid, double fork or env -i, so this alone finds
//     them all;
//   - the program's descendants by parent links, while it is unreaped;
//   - members seen before by the sampler, still the same process (same
//     start time);
//   - processes whose environment carries the launch's marker;
//   - the program's process group, while the program is unreaped or a
//     member is in it;
//   - orphans: with [EnableSubreaper], an orphaned descendant is re-parented
//     to this process rather than to init. Every child of this process that
//     the launcher did not start is such an orphan. One is a member of the
//     launches it can be attributed to by the means above; failing those —
//     with no tracking cgroup, when it left the tree, the process group and
//     the environment before the sampler saw it — by when it started: a
//     process that left this process's session (setsid) and started after
//     the program and before the launch's first Cleanup is a member of
//     every such launch. An ambiguous orphan is thus reported by each of
//     the launches running when it started, and ended by the first Cleanup;
//     it is never left running because the attribution was unsure. The
//     flip side: a child that other code of this program started with its
//     own session would be taken for an orphan; where that matters, use a
//     machine with a tracking cgroup.
//
// and the descendants of all of these. Without a tracking cgroup and
// without EnableSubreaper, an orphan that dropped the marker before the
// sampler saw it goes to init, and is not found.
//
// # Tracking cgroups
//
// Where this process may create a cgroup beside its own, each launch gets
// one (oe-rt-launch.PID.N), and the program is born in it: on cgroup v2
// through CLONE_INTO_CGROUP (inside Spec.CgroupFD when one is given, so
// that its limits apply), emptied with cgroup.kill; on cgroup v1 in the
// pids hierarchy, by moving the forking thread into it for the fork.
// [Process.Tracking] says which, or why there is none. The environment
// variable OE_RT_LAUNCH_TRACKING=v2|v1|none forces the choice (for tests,
// and for a machine where the automatic choice misbehaves). Launchers nest:
// a launcher started by a launcher makes its cgroups inside the outer
// one's and adds its marker to the one it inherited.
//
// cgroup v1 and v2 sit behind one interface (cgroupManager, after runc's
// cgroups.Manager: Set, Apply, Pids, Kill, Stats, Destroy), with a v1 and a v2
// implementation; a launch's tracking and limit cgroups are each chosen
// once, when it starts, and everything after speaks to the interface.
//
// # Limits
//
// With Spec.Limits the launch gets cgroups of its own that enforce them,
// as a container runtime limits one container, and the program is born in
// them, so the limits hold from its first instruction:
//
//   - cgroup v2, where this process may make a cgroup under a parent that
//     enables the memory and pids controllers for its children (its own
//     cgroup when that is the root; else its parent: as root, or in a
//     delegated subtree while this process runs in a leaf of it): one
//     cgroup with memory.max, memory.swap.max 0 and pids.max; the tracking
//     cgroup is made inside it and the program cloned into that;
//   - cgroup v1, as root: a cgroup with memory.limit_in_bytes (and
//     memory.memsw.limit_in_bytes at the same value where swap is
//     accounted, so that swap is not used past it) in the memory
//     hierarchy and one with pids.max in the pids hierarchy, each under
//     this process's own; the forking thread joins both for the fork and
//     goes back. They also track the launch.
//
// Where neither is possible, Start returns a [*LimitError] that says why
// and what would make it possible; it never starts the program without
// its limits. [CheckLimits] finds out beforehand. OE_RT_LAUNCH_LIMITS=v2|v1
// forces the choice. [Process.LimitStats] returns what the kernel counted:
// the peak memory charged (page cache included: the kernel reclaims it at
// the limit, and counts how often it had to), OOM kills, the peak of tasks
// and the forks and thread creations refused at pids.max. Cleanup reads
// them one last time, then removes the cgroups; if this process dies, the
// guard removes them.
//
// # Never a recycled PID
//
// The program is signalled only through its pidfd (os.Process), so never
// after it was reaped. Its process group is signalled only while it is
// unreaped: the waiter first waits without reaping (WNOWAIT), then reaps
// under a lock that group signals hold. Any other process is signalled
// through a pidfd opened before its start time is checked against the one
// recorded when it was found, so a PID that went to a stranger is never
// signalled; this process and its own group never are.
//
// # When this process dies
//
// If this process is killed (SIGKILL, the OOM killer) its direct children
// die of their parent-death signal. Go fires that signal when the thread
// that forked the child exits (golang/go#27505), so every fork happens on
// one OS thread locked for the life of the process. Descendants that left
// the tree are ended by the guard: while a launch is live, this executable
// runs again as a small guard process (re-executed with
// OE_RT_LAUNCH_GUARD set, run by [Init] first thing in main). It
// is told of each launch before its fork and of its members as they are
// found; when its pipe from this process closes with launches still on it,
// it kills the processes of the tracking and limit cgroups, the members
// (checked by start time) and every process with a launch's marker,
// removes the cgroups and exits. It runs in its own process group and ignores SIGINT, SIGTERM and
// SIGHUP. It exits with the last Cleanup, so that no process outlives the
// launches.
//
// # Cost
//
// What a launch costs (start, sample, Cleanup, under limits) is measured
// by `go test -bench . ./internal/launch/`; the figures are in
// docs/performance.md ("The launcher").
//
// # Process-wide
//
// [Init] makes the launcher's process-wide state — the cgroup hierarchies,
// the forking thread, the registry of what it started, the guard — as one
// value that every launch holds; the package keeps no other mutable state.
// [EnableSubreaper] is process-wide: call it once, from the command layer
// or a test's TestMain. [Tree], [All], [Listeners], [Marked], [Alive],
// [Exists] and [FreePort] are small /proc and network helpers.
package launch
